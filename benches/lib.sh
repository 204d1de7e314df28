# Shared by the benchmark scripts (sourced after they cd to the repository's root).

# Prints the address an echo server printed on its "listening ADDR" line in FILE, waiting for
# it up to TRIES times DELAY seconds (default 100 × 0.05 s); prints nothing if it never came.
listening_addr() {
  local file=$1 tries=${2:-100} delay=${3:-0.05} addr=
  for _ in $(seq "$tries"); do
    addr=$(awk '/^listening /{print $2; exit}' "$file")
    [[ -n $addr ]] && break
    sleep "$delay"
  done
  echo "$addr"
}
