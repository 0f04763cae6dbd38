# Sourced by ./kvslab and .ci/run: exports JAVA_HOME pointing at a JDK >= 25 (the build's floor).
# The major version from the JDK's `release` file (JAVA_VERSION="25.0.3"; every JDK since 9 writes one), read by bash
# alone: asking `java` itself costs a JVM start (~0.08 s of CPU) on every ./kvslab command. Without the file, ask java.
kvslab_java_major() {
  local line
  if [[ -r "$1/release" ]]; then
    while IFS= read -r line || [[ -n "$line" ]]; do
      [[ "$line" =~ ^JAVA_VERSION=\"([0-9]+) ]] && { echo "${BASH_REMATCH[1]}"; return 0; }
    done < "$1/release"
  fi
  "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'
}
kvslab_find_jdk() {
  local c
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [[ -n "$c" && -x "$c/bin/java" && -x "$c/bin/javac" ]] || continue
    local v; v="$(kvslab_java_major "$c")"
    [[ "$v" =~ ^[0-9]+$ ]] && (( v >= 25 )) && { echo "$c"; return 0; }
  done
  return 1
}
if ! JAVA_HOME="$(kvslab_find_jdk)"; then
  echo "kvslab: no JDK >= 25 found (looked at \$JAVA_HOME and /usr/lib/jvm/*). KVSlab needs java.lang.foreign from JDK 25." >&2
  exit 1
fi
export JAVA_HOME
export PATH="$JAVA_HOME/bin:$PATH"
