# NixOS module: services.nucleus. Installs nucleus and runs each declared
# bundle (from `nucleus bundle`) as a systemd service with `nucleus run`.
{ overlay }:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.nucleus;
  inherit (lib) mkEnableOption mkOption mkIf types mapAttrs';
in
{
  options.services.nucleus = {
    enable = mkEnableOption "the Nucleus container runtime";
    package = mkOption {
      type = types.package;
      default = pkgs.nucleus or (pkgs.callPackage ./package.nix { });
      description = "The nucleus package.";
    };
    stateDir = mkOption {
      type = types.str;
      default = "/run/nucleus";
      description = "Container state directory (nucleus --root).";
    };
    containers = mkOption {
      default = { };
      description = "Bundles to run as services, by container id.";
      type = types.attrsOf (types.submodule {
        options = {
          bundle = mkOption {
            type = types.str;
            description = "OCI bundle directory written by `nucleus bundle`.";
          };
          verifyAttestation = mkOption {
            type = types.bool;
            default = true;
            description = "Refuse to start when the bundle's attestation.json does not match.";
          };
        };
      });
    };
  };

  config = mkIf cfg.enable {
    nixpkgs.overlays = [ overlay ];
    environment.systemPackages = [ cfg.package ];
    systemd.services = mapAttrs' (id: c: {
      name = "nucleus-${id}";
      value = {
        description = "Nucleus container ${id}";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${cfg.package}/bin/nucleus --root ${cfg.stateDir} run"
            + lib.optionalString c.verifyAttestation " --verify-attestation"
            + " --bundle ${c.bundle} ${id}";
          ExecStopPost = "-${cfg.package}/bin/nucleus --root ${cfg.stateDir} delete --force ${id}";
          Restart = "on-failure";
        };
      };
    }) cfg.containers;
  };
}
