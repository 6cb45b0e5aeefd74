/**
 * Spawning servers (`cli.ts serve`) and the pool's side of `tls://` hosts.
 *
 * @module
 */
import type { HostSpec } from "./host_spec.ts";
import type { Endpoint, Launch, Launcher } from "./launcher.ts";

/** Settings for `tls://` (spawning server) hosts. */
export interface TlsOptions {
  /** File holding the shared token (never on a command line). */
  tokenFile?: string;
  /** The token itself (instead of `tokenFile`). */
  token?: string;
  /** PEM file of the CA, or of the server's own certificate to pin. */
  caFile?: string;
}

/** Starts a host's workers through a `cli.ts serve` server. */
export class TlsLauncher implements Launcher {
  /** `host:port`. */
  readonly host: string;
  /** Workers per launch. */
  readonly groupSize: number;

  /** @param spec A parsed tls host. @param _options TLS settings. */
  constructor(spec: HostSpec, _options: TlsOptions) {
    this.host = `${spec.host}:${spec.port}`;
    this.groupSize = spec.workers;
  }

  /** Not yet. */
  launch(_ids: number[], _endpoint: Endpoint): Launch {
    throw new TypeError(
      `Host ${this.host}: spawning servers are not supported yet`,
    );
  }
}
