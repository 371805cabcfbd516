# NixOS module for Accord: services.accord.{log,witness,monitor,proxy}.
#
#   imports = [ ./deploy/nixos/module.nix ];
#   services.accord.package = <a derivation with bin/accord>;
#   services.accord.proxy = { enable = true; config = ./proxy.toml; };
#
# Each server runs as its own dynamic user with a state directory under /var/lib, hardened as
# the units in deploy/systemd are. Keys are handed over as systemd credentials.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkIf mkOption types escapeShellArgs;
  cfg = config.services.accord;

  hardening = {
    DynamicUser = true;
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    SystemCallArchitectures = "native";
    CapabilityBoundingSet = "";
    UMask = "0077";
    Restart = "on-failure";
    RestartSec = "5s";
  };

  service = name: description: execStart: extra: {
    inherit description;
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    wantedBy = [ "multi-user.target" ];
    serviceConfig = hardening // {
      StateDirectory = "accord-${name}";
      WorkingDirectory = "/var/lib/accord-${name}";
      ExecStart = execStart;
    } // extra;
  };

  listenOption = default: mkOption {
    type = types.str;
    inherit default;
    description = "Address to listen on, HOST:PORT.";
  };

  extraArgsOption = mkOption {
    type = types.listOf types.str;
    default = [ ];
    description = "More command-line options (see `accord <command> --help`).";
  };

  accord = "${cfg.package}/bin/accord";
in
{
  options.services.accord = {
    package = mkOption {
      type = types.package;
      description = "The Accord package (a derivation with bin/accord).";
    };

    log = {
      enable = mkEnableOption "an Accord builder log (accord log serve)";
      origin = mkOption {
        type = types.str;
        example = "builder1.example.org/log";
        description = "The log's origin; its key is made under /var/lib/accord-log on first start.";
      };
      listen = listenOption "127.0.0.1:8080";
      store = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "postgres://accord@localhost/accord";
        description = "Where entries live (default: SQLite under /var/lib/accord-log).";
      };
      submitters = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = ''
          Submitters file (`name sha256-of-token` lines, `!` revokes); re-read when it changes.
          Default: /var/lib/accord-log/submitters, made with one token on first start.
        '';
      };
      extraArgs = extraArgsOption;
    };

    witness = {
      enable = mkEnableOption "an Accord witness (accord witness serve)";
      keyFile = mkOption {
        type = types.path;
        description = "The witness key (accord keygen --witness), outside the Nix store.";
      };
      logs = mkOption {
        type = types.path;
        description = "The logs to witness: a file of tlog-policy `log` lines.";
      };
      listen = listenOption "127.0.0.1:8082";
      extraArgs = extraArgsOption;
    };

    monitor = {
      enable = mkEnableOption "an Accord monitor (accord monitor serve)";
      policy = mkOption {
        type = types.path;
        description = "The policy whose logs (and witnesses) the monitor follows.";
      };
      listen = listenOption "127.0.0.1:8083";
      extraArgs = extraArgsOption;
    };

    proxy = {
      enable = mkEnableOption "the Accord k-of-n Nix substituter (accord proxy)";
      config = mkOption {
        type = types.path;
        description = ''
          The proxy's TOML config (docs/proxy.md). Its `state` and `nar-disk-cache` must be
          under /var/lib/accord-proxy and its `signing-key` the credential
          /run/credentials/accord-proxy.service/proxy.sk.
        '';
      };
      signingKeyFile = mkOption {
        type = types.path;
        description = "The Nix secret key narinfos are signed with, outside the Nix store.";
      };
      extraArgs = extraArgsOption;
    };
  };

  config = lib.mkMerge [
    (mkIf cfg.log.enable {
      systemd.services.accord-log = service "log" "Accord builder log"
        ("${accord} log serve --data-dir /var/lib/accord-log "
          + escapeShellArgs ([ "--origin" cfg.log.origin "--listen" cfg.log.listen ]
            ++ lib.optionals (cfg.log.store != null) [ "--store" cfg.log.store ]
            ++ lib.optionals (cfg.log.submitters != null) [ "--submitters" "${cfg.log.submitters}" ]
            ++ cfg.log.extraArgs))
        { ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID"; };
    })
    (mkIf cfg.witness.enable {
      systemd.services.accord-witness = service "witness" "Accord witness"
        ("${accord} witness serve --key %d/witness.key --data-dir /var/lib/accord-witness "
          + escapeShellArgs ([ "--logs" "${cfg.witness.logs}" "--listen" cfg.witness.listen ]
            ++ cfg.witness.extraArgs))
        { LoadCredential = "witness.key:${toString cfg.witness.keyFile}"; };
    })
    (mkIf cfg.monitor.enable {
      systemd.services.accord-monitor = service "monitor" "Accord monitor"
        ("${accord} monitor serve --state /var/lib/accord-monitor/monitor.db "
          + escapeShellArgs ([ "--policy" "${cfg.monitor.policy}" "--listen" cfg.monitor.listen ]
            ++ cfg.monitor.extraArgs))
        { };
    })
    (mkIf cfg.proxy.enable {
      systemd.services.accord-proxy = service "proxy" "Accord k-of-n Nix substituter"
        ("${accord} proxy " + escapeShellArgs ([ "--config" "${cfg.proxy.config}" ] ++ cfg.proxy.extraArgs))
        { LoadCredential = "proxy.sk:${toString cfg.proxy.signingKeyFile}"; };
    })
  ];
}
