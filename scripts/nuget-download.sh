#!/usr/bin/env bash
# Downloads NuGet packages into the global packages folder without building anything: a throwaway
# project's PackageDownload restore, made outside the repository so its Directory.*.props (central
# versions, warnings as errors) stay out. Used for what the tests need that no project references
# (Pester, AWSSDK.Core 3.7, the win-x64 runtime packs of the Windows leg).
# Arguments: Name=Version ...; a package already in the folder (its .nupkg.metadata, which NuGet
# writes last, is there) is not restored again. Prints the global packages folder on stdout;
# restore output goes to stderr; exits non-zero when a package did not arrive.
set -euo pipefail

packages=$(dotnet nuget locals global-packages --list | sed -E 's/^global-packages: *//; s:/*$::')
present() { [ -f "$packages/${1,,}/$2/.nupkg.metadata" ]; }

missing=()
for spec in "$@"; do
  present "${spec%%=*}" "${spec#*=}" || missing+=("$spec")
done
if [ ${#missing[@]} -gt 0 ]; then
  restore=$(mktemp -d)
  trap 'rm -rf "$restore"' EXIT
  {
    echo '<Project Sdk="Microsoft.NET.Sdk">'
    echo '  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>'
    echo '  <ItemGroup>'
    for spec in "${missing[@]}"; do
      echo "    <PackageDownload Include=\"${spec%%=*}\" Version=\"[${spec#*=}]\" />"
    done
    echo '  </ItemGroup>'
    echo '</Project>'
  } > "$restore/download.csproj"
  dotnet restore "$restore/download.csproj" -nologo -v quiet >&2
  for spec in "${missing[@]}"; do
    present "${spec%%=*}" "${spec#*=}" || { echo "nuget-download: ${spec%%=*} ${spec#*=} did not arrive in $packages" >&2; exit 1; }
  done
fi
echo "$packages"
