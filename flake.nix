{
  description = "Nucleus: a daemonless OCI runtime whose root filesystems are Nix closures";

  # No inputs: everything here evaluates and builds offline, without nixpkgs.
  # The only builder is a static busybox in ./nix/bb/busybox, copied there
  # from Debian's busybox-static by `make flake` (never committed).
  outputs = { self }:
    let
      system = "x86_64-linux";
      nlib = import ./nix/lib.nix { busyboxDir = ./nix/bb; inherit system; };
      inherit (nlib) busybox writeScriptBin mkRootfs;

      # The example agent: greets, then runs its arguments (if any).
      agent = writeScriptBin "agent" ''
        #!${busybox}/bin/sh
        echo "agent-example: hello from $(hostname)"
        [ "$#" -eq 0 ] || exec "$@"
      '';
      hello = writeScriptBin "hello" ''
        #!${busybox}/bin/sh
        echo "hello, world"
      '';
    in
    {
      lib = { inherit mkRootfs writeScriptBin; };

      packages.${system} = {
        inherit busybox;
        # A sandbox rootfs: busybox + the agent script, entrypoint `agent`.
        agent-example = mkRootfs {
          name = "agent-example";
          packages = [ agent busybox ];
          entrypoint = "agent";
          shell = busybox;
        };
        # A plain package (no mkRootfs): its entrypoint comes from apps.
        hello-example = hello;
      };

      apps.${system}.hello-example = {
        type = "app";
        program = "${hello}/bin/hello";
      };

      overlays.default = final: prev: {
        nucleus = final.callPackage ./nix/package.nix { };
      };

      nixosModules.default = import ./nix/module.nix { overlay = self.overlays.default; };
    };
}
