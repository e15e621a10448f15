# Sourced by the benchmark scripts that replay engram_pg_seed.py's bodies:
#   wrk_line SCRIPT CONNS PORT   runs wrk for $DURATION s with the Lua SCRIPT
#                                against 127.0.0.1:PORT (the put and search
#                                bodies in $out, $N seeded items under
#                                bench.seed) and prints its RESULT line
#   record FIELD...              appends the fields as one tab-separated row
#                                to $raw, and shows it on stderr
wrk_line() {
  PUT_BODIES="$out/puts.txt" SEARCH_BODIES="$out/searches.txt" ITEMS=$N ITEM_NS=bench.seed \
    wrk -t $(( $2 < 2 ? 1 : 2 )) -c "$2" -d "${DURATION}s" -s "$1" "http://127.0.0.1:$3" | grep '^RESULT'
}
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" | tee -a "$raw" >&2; }
