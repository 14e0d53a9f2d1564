# The nucleus binary, for callers that bring their own nixpkgs:
#   pkgs.callPackage ./nix/package.nix { }
# (the flake's overlays.default does this). buildGoModule comes from the
# caller; this flake itself has no inputs and never builds it offline.
{ lib, buildGoModule, pkg-config, libseccomp, glibc
, version ? "0.1.0-dev"
, vendorHash ? lib.fakeHash
}:

buildGoModule {
  pname = "nucleus";
  inherit version vendorHash;
  src = lib.cleanSource ./..;
  # nucleus-otlp: the OpenTelemetry exporter nucleus runs from beside itself.
  subPackages = [ "cmd/nucleus" "cmd/nucleus-otlp" ];
  tags = [ "seccomp" "netgo" "osusergo" ];
  nativeBuildInputs = [ pkg-config ];
  buildInputs = [ libseccomp glibc.static ];
  ldflags = [ "-s" "-w" "-X main.version=${version}" "-extldflags=-static" ];
  doCheck = false; # the tests need root and real containers
  meta = {
    description = "Daemonless OCI container runtime for agent sandboxes and declarative services";
    license = lib.licenses.asl20;
    platforms = [ "x86_64-linux" ];
    mainProgram = "nucleus";
  };
}
