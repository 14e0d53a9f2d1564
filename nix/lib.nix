# Nix functions for Nucleus rootfs closures, without nixpkgs.
#
# busyboxDir is a directory holding a static busybox named `busybox` (the
# name matters: busybox picks its applet from argv[0]); it is the only
# builder. The flake copies Debian's busybox-static there (make flake).
{ busyboxDir, system ? "x86_64-linux" }:
let
  # A flake in a git work tree (or taken as a git input) sees only tracked
  # files, and the busybox is never committed: say what to do instead.
  sh =
    if builtins.pathExists (busyboxDir + "/busybox") then "${busyboxDir}/busybox"
    else throw "nucleus lib.nix: no static busybox at ${toString busyboxDir}/busybox: run `make flake` and use the flake it writes, path:<repo>/build/flake (a git work tree or git input hides the untracked nix/bb)";

  # run name script: a derivation built by `busybox sh -euc script`, with
  # busybox's applets on PATH.
  run = name: env: script: builtins.derivation ({
    inherit name system;
    builder = sh;
    args = [ "sh" "-euc" ''
      export PATH=$TMPDIR/.bb
      ${sh} mkdir -p $PATH
      ${sh} --install -s $PATH
      ${script}
    '' ];
  } // env);

  # A static busybox with every applet as a symlink in bin/.
  busybox = (run "busybox" { } ''
    mkdir -p $out/bin
    cp ${sh} $out/bin/busybox
    chmod 0555 $out/bin/busybox
    $out/bin/busybox --install -s $out/bin
  '') // { meta.mainProgram = "sh"; };

  # writeScript name text: $out/bin/name, an executable with text.
  writeScriptBin = name: text: (run name { inherit text; passAsFile = [ "text" ]; } ''
    mkdir -p $out/bin
    cp "$textPath" $out/bin/${name}
    chmod 0555 $out/bin/${name}
  '') // { meta.mainProgram = name; };

  # mkRootfs { name, packages, entrypoint, shell }: a minimal environment
  # for `nucleus bundle`: $out/bin holds symlinks to every bin/ entry of
  # packages (and of shell, as bin/sh), and
  #   $out/nix-support/entrypoint  the absolute path of the entrypoint
  #   $out/nix-support/closure     the closure's store paths ($out and
  #                                 what it needs), sorted, one a line
  #                                 (from exportReferencesGraph)
  # entrypoint is a command name in that bin/ (e.g. "agent") or a path
  # (e.g. "${pkg}/bin/agent"); shell is a package with bin/sh, or null.
  mkRootfs = { name, packages ? [ ], entrypoint, shell ? null }:
    let
      all = packages ++ (if shell == null then [ ] else [ shell ]);
      ep = toString entrypoint;
    in
    (run name
      {
        exportReferencesGraph = builtins.concatLists
          (builtins.genList (i: [ "graph${toString i}" (builtins.elemAt all i) ]) (builtins.length all));
        pkgs = all;
        shellPkg = if shell == null then "" else shell;
        entrypoint = ep;
      } ''
      mkdir -p $out/bin $out/nix-support
      for p in $pkgs; do
        [ -d "$p/bin" ] || continue
        for f in "$p"/bin/*; do
          [ -e "$f" ] || [ -L "$f" ] || continue
          b=$(basename "$f")
          [ -e "$out/bin/$b" ] || [ -L "$out/bin/$b" ] || ln -s "$f" "$out/bin/$b"
        done
      done
      if [ -n "$shellPkg" ]; then
        [ -e "$shellPkg/bin/sh" ] || { echo "mkRootfs: shell $shellPkg has no bin/sh" >&2; exit 1; }
        ln -sfn "$shellPkg/bin/sh" $out/bin/sh
      fi
      case "$entrypoint" in
        /*) ep=$entrypoint ;;
        *) ep=$out/bin/$entrypoint ;;
      esac
      [ -e "$ep" ] || { echo "mkRootfs: entrypoint $entrypoint not found (in $out/bin)" >&2; exit 1; }
      printf '%s\n' "$ep" > $out/nix-support/entrypoint
      # exportReferencesGraph blocks: path, deriver, count, references.
      { cat graph* | awk '
          s == 0 { print; s = 1; next }
          s == 1 { s = 2; next }
          s == 2 { n = $0; s = (n == 0) ? 0 : 3; next }
          { if (--n == 0) s = 0 }'
        echo "$out"
      } | sort -u > $out/nix-support/closure
    '') // { meta.mainProgram = if builtins.substring 0 1 ep == "/" then null else ep; };
in
{
  inherit busybox writeScriptBin mkRootfs;
}
