/**
 * Remote workers over SSH: one `ssh -R remote.sock:local.sock host …` per
 * host, starting N workers there that share the reverse tunnel.
 *
 * @module
 */
import type { HostSpec } from "./host_spec.ts";
import type { Endpoint, Launch, Launcher } from "./launcher.ts";
import { HostError } from "./errors.ts";

/** SSH settings for `ssh://` hosts. */
export interface SshOptions {
  /** Extra arguments for `ssh`, e.g. `["-F", "ssh_config", "-i", "key"]`. */
  args?: string[];
  /**
   * The command that starts workers on the host.
   * @default {"deno run -A jsr:@distex/pool/cli"}
   */
  command?: string;
}

/** Creates the launcher for one host spec. */
export function createHostLauncher(
  spec: HostSpec,
  _options: SshOptions,
): Launcher {
  return {
    host: spec.host,
    groupSize: spec.workers,
    launch(_ids: number[], _endpoint: Endpoint): Launch {
      throw new HostError(spec.host, "remote hosts are not supported yet");
    },
  };
}
