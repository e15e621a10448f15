//! The memory contract as test bodies written against a [`Harness`] — a
//! backend factory — and run once per backend. A new backend adds one line to
//! [`conformance!`]'s expansion and passes every body unchanged.
//!
//! The contract: memories CRUD and versions (`memories.rs`), list pagination
//! and tenant isolation (`memories.rs`), filters, checked differentially
//! against the reference evaluator (`filters.rs`), keyword, vector and hybrid
//! search (`search.rs`), TTL and liveness (`ttl.rs`), merging on every path
//! (`merge.rs`), keys limited to namespaces (`grants.rs`), sessions and distillation (`sessions.rs`), salience and
//! promotion (`salience.rs`), recall (`recall.rs`), export and import
//! (`transfer.rs`).

pub mod filters;
pub mod grants;
pub mod journal;
pub mod memories;
pub mod merge;
pub mod recall;
pub mod salience;
pub mod search;
pub mod sessions;
pub mod transfer;
pub mod ttl;

/// Instantiates every body for every backend: `conformance::<backend>::<body>`.
macro_rules! conformance {
    ($($module:ident :: $body:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$module::$body(crate::harness::Harness::new(crate::harness::Backend::Sqlite)).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$module::$body(crate::harness::Harness::new(crate::harness::Backend::Postgres)).await
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$module::$body(crate::harness::Harness::new(crate::harness::Backend::Memory)).await
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    super::$module::$body(crate::harness::Harness::new(crate::harness::Backend::Mongo)).await
                }
            )*
        }
    };
}

conformance! {
    memories::crud_and_versions,
    memories::keyed_writes_replace_in_place,
    memories::pagination_is_stable_and_whole_segment,
    memories::tenants_are_isolated,
    memories::concurrent_writes_are_all_kept,
    memories::concurrent_writers_of_one_key_serialise,
    memories::key_changes_take_effect_at_once,
    memories::model_changes_are_noticed_within_the_cache_lifetime,
    memories::nul_characters_are_refused_everywhere,
    journal::failed_writes_leave_the_chains_whole,
    grants::a_limited_caller_reaches_only_its_namespaces,
    grants::vector_search_of_a_limited_caller_stays_in_its_namespaces,
    filters::filters_agree_with_the_reference_evaluator,
    filters::object_valued_fields_are_not_their_members,
    filters::hostile_filters_never_break_the_query,
    search::keyword_search_ranks_within_the_scope,
    search::common_words_of_a_large_index_are_not_searched,
    search::a_small_scope_is_found_inside_a_big_index,
    search::vector_and_hybrid_search_stay_in_scope,
    search::neighbours_lend_context_within_their_namespace,
    search::words_are_found_inside_scripts_written_without_spaces,
    ttl::expired_memories_are_never_returned_and_are_swept,
    ttl::expired_matches_do_not_crowd_out_live_ones,
    ttl::item_reads_refresh_the_ttl,
    ttl::sessions_end_when_idle_and_keep_their_turns,
    merge::near_duplicates_merge_at_write_time,
    merge::duplicates_found_when_the_vector_arrives_are_folded,
    merge::a_distilled_restatement_merges_with_an_api_memory,
    merge::keyed_items_absorb_restatements_but_never_each_other,
    merge::patching_text_into_a_duplicate_folds_it,
    merge::merged_ids_lead_to_the_survivor,
    merge::stale_embeddings_are_dropped_and_the_queue_survives_a_reopen,
    merge::a_deleted_memorys_queued_work_never_lands_on_a_newer_one,
    merge::near_duplicates_are_checked_again_inside_the_transaction,
    merge::expired_neighbours_do_not_crowd_out_live_ones,
    sessions::queued_distillation_survives_a_reopen_and_runs_once,
    sessions::an_inline_distillation_is_its_queuers_until_it_runs,
    sessions::deleting_a_session_cancels_its_distillation,
    sessions::a_failing_distiller_falls_back_to_the_extractive_one,
    sessions::concurrent_appends_keep_every_writers_order,
    sessions::namespace_is_fixed_by_the_first_append,
    sessions::turns_keep_the_speakers_time_zone,
    sessions::a_session_id_used_again_keeps_the_earlier_sessions_work,
    sessions::queued_work_is_leased_to_one_worker_at_a_time,
    salience::citations_raise_salience_and_time_lowers_it,
    salience::promotion_moves_salient_memories_and_folds_duplicates,
    recall::recall_routes_tiers_and_packs_the_context,
    recall::nothing_searchable_or_relevant_is_an_answer,
    recall::a_tight_budget_still_carries_the_best_memory,
    transfer::a_restore_gives_the_same_answers_on_either_backend,
    transfer::a_damaged_cut_or_altered_export_is_refused,
    transfer::hostile_records_cannot_cross_tenants_or_break_invariants,
}
