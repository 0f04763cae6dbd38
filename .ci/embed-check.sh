#!/usr/bin/env bash
# Proves that io.kvslab:kvslab-core is embeddable by its coordinates alone: installs the built jar (with its parent
# POM) into a PRIVATE local repository (kvstore/target/embed-repo; the shared ~/.m2 is only read, as a file://
# mirror for Maven's own plugins) and builds and runs kvstore/src/it/embed, a separate project that depends on
# nothing else. Run after `mvn package` (./kvslab test does). Takes ~15-30 s.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/.ci/jdk.sh"
version="$(sed -n '0,/<version>/s|.*<version>\(.*\)</version>.*|\1|p' "$root/pom.xml")"
jar="$root/kvstore/target/kvslab-core-$version.jar"
[[ -f "$jar" ]] || { echo "embed-check: $jar is missing; run mvn package first" >&2; exit 1; }
shared="${KVSLAB_SHARED_M2:-$HOME/.m2/repository}"
target="$root/kvstore/target"
repo="$target/embed-repo"
work="$target/embed-project"
rm -rf "$repo" "$work"
mkdir -p "$repo"
cp -r "$root/kvstore/src/it/embed" "$work"
cat > "$work/settings.xml" <<XML
<settings>
  <mirrors>
    <mirror><id>read-only-m2</id><mirrorOf>*</mirrorOf><url>file://$shared</url></mirror>
  </mirrors>
</settings>
XML
mvn_private() { (cd "$work" && mvn -B -ntp -q -Dstyle.color=never -s "$work/settings.xml" -Dmaven.repo.local="$repo" "$@"); }

# every native file in the jar is named in the notices
notices="$root/THIRD-PARTY-NOTICES.md"
while read -r f; do
  grep -qF "\`$f\`" "$notices" || { echo "embed-check: $f is in the jar but not in THIRD-PARTY-NOTICES.md" >&2; exit 1; }
done < <("$JAVA_HOME/bin/jar" tf "$jar" | sed -n 's|^native/linux-x86_64/\([^/]\+\)$|\1|p')

install=org.apache.maven.plugins:maven-install-plugin:3.1.4:install-file
mvn_private "$install" -Dfile="$root/pom.xml" -DpomFile="$root/pom.xml" -Dpackaging=pom
extra=()
for c in sources javadoc; do
  [[ -f "$target/kvslab-core-$version-$c.jar" ]] && extra+=("-D$c=$target/kvslab-core-$version-$c.jar")
done
mvn_private "$install" -Dfile="$jar" -DpomFile="$root/kvstore/pom.xml" "${extra[@]}"

out="$(mvn_private -Dkvslab.version="$version" process-classes 2>&1)" || { echo "$out" >&2; exit 1; }
echo "$out"
grep -q "^EMBED OK$" <<<"$out" || { echo "embed-check: the embedding project did not finish" >&2; exit 1; }
grep -qF "$repo/io/kvslab/kvslab-core/$version/kvslab-core-$version.jar" <<<"$out" \
  || { echo "embed-check: kvslab-core was not resolved from the private repository $repo" >&2; exit 1; }
echo "embed-check: OK (io.kvslab:kvslab-core:$version from $repo)"
