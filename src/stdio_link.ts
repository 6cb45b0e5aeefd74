/**
 * The pool side of a link to a remote supervisor (see `link.ts`): a
 * {@link Launch} over any transport that reaches the supervisor's stdin (and,
 * for a stdio link, its stdout): a child process (`ssh`, `srun`,
 * `kubectl exec -i`, …) or a TLS connection to a `serve` server. On a stdio
 * link, each worker connection the supervisor relays becomes one
 * {@link ByteChannel} handed to the pool through `Endpoint.accept`.
 *
 * @module
 */
import type { Endpoint, Launch, LaunchExit } from "./launcher.ts";
import { _collectTail } from "./launcher.ts";
import {
  type Control,
  encodeControl,
  encodeLinkFrame,
  LinkOp,
  LinkParser,
  LinkWriter,
  PING_MS,
  SILENCE_MS,
} from "./link.ts";
import type { ByteChannel } from "./protocol.ts";
import { HostError } from "./errors.ts";

/** One worker connection relayed over a link. */
class LinkChannel implements ByteChannel {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #closed = false;
  #waiter: PromiseWithResolvers<void> | undefined;
  #id: number;
  #writer: LinkWriter;

  constructor(id: number, writer: LinkWriter) {
    this.#id = id;
    this.#writer = writer;
  }

  /** Bytes from the supervisor. */
  push(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#chunks.push(bytes);
    this.#wake();
  }

  /** The supervisor closed this connection (or the link ended). */
  end(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended || this.#closed) return null;
      this.#waiter ??= Promise.withResolvers();
      await this.#waiter.promise;
    }
    const head = this.#chunks[0]!;
    if (head.length <= p.length) {
      p.set(head);
      this.#chunks.shift();
      return head.length;
    }
    p.set(head.subarray(0, p.length));
    this.#chunks[0] = head.subarray(p.length);
    return p.length;
  }

  async write(p: Uint8Array): Promise<number> {
    if (this.#closed || this.#ended) {
      throw new Deno.errors.BrokenPipe("the relayed connection is closed");
    }
    // The writer copies the bytes into its batch before the caller may
    // reuse `p` (the copy happens in the same turn via encodeLinkFrame).
    await this.#writer.data(this.#id, p.slice());
    return p.length;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#chunks = [];
    this.#wake();
    if (!this.#ended) {
      this.#writer.send(encodeLinkFrame(LinkOp.Close, this.#id)).catch(
        () => {},
      );
    }
  }
}

/** What a link runs over: a child process's pipes or a TLS connection. */
export interface LinkTransport {
  /** Writes all of `bytes` to the supervisor's stdin. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the supervisor's stdin (its lifeline). */
  closeWrite(): Promise<void>;
  /** The supervisor's stdout, for a stdio link; undefined for a tunnel. */
  readable: ReadableStream<Uint8Array> | undefined;
  /** Resolves when the transport has ended. Never rejects. */
  exited: Promise<LaunchExit>;
  /** Ends the transport now. */
  kill(signal?: Deno.Signal): void;
  /** The last stderr lines (for messages). */
  stderrTail(): string[];
  /** Whether the transport keeps this program alive (an idle pool unrefs it). */
  ref?(on: boolean): void;
}

/** Wraps a spawned child (stdin piped; stdout piped for a stdio link). */
export function childTransport(
  child: Deno.ChildProcess,
  stdio: boolean,
  forwardStderr = true,
): LinkTransport {
  const tail: string[] = [];
  const stderrDone = _collectTail(child.stderr, tail, forwardStderr);
  const stdin = child.stdin.getWriter();
  return {
    write: (bytes) => stdin.write(bytes),
    closeWrite: () => stdin.close().catch(() => {}),
    readable: stdio ? child.stdout : undefined,
    exited: child.status.then(async (status) => {
      await stderrDone;
      return {
        code: status.signal ? undefined : status.code,
        signal: status.signal ?? undefined,
      };
    }),
    kill(signal: Deno.Signal = "SIGKILL") {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
    },
    stderrTail: () => tail.slice(),
    ref: (on) => on ? child.ref() : child.unref(),
  };
}

/**
 * A {@link Launch} over a link: writes the secret, relays worker connections
 * (stdio link) to `endpoint.accept`, and sends the pool's commands.
 */
export function linkLaunch(
  transport: LinkTransport,
  host: string,
  endpoint: Endpoint,
  failure: (exit: LaunchExit, tail: string[], timeoutMs?: number) => Error,
): Launch {
  const writer = new LinkWriter((bytes) => transport.write(bytes));
  const sent = writer.send(new TextEncoder().encode(endpoint.secret + "\n"))
    .catch(() => {});
  const channels = new Map<number, LinkChannel>();
  let relayDone: Promise<void> = Promise.resolve();
  let silenced = false;
  /** The link's ping timer (a stdio link's); unref'd with the launch. */
  let pinger: ReturnType<typeof setInterval> | undefined;
  const readable = transport.readable;
  if (readable) {
    const accept = endpoint.accept;
    const parser = new LinkParser((op, id, payload) => {
      if (op === LinkOp.Open) {
        const channel = new LinkChannel(id, writer);
        channels.set(id, channel);
        if (accept) accept(channel);
        else channel.close();
      } else if (op === LinkOp.Data) {
        channels.get(id)?.push(payload);
      } else if (op === LinkOp.Close) {
        channels.get(id)?.end();
        channels.delete(id);
      }
    });
    // Both sides ping; a supervisor not heard from for SILENCE_MS is gone
    // (a cut network closes nothing). The clock starts when it is first
    // heard from: before that it may be queued (srun), pulling an image or
    // downloading the package, and the pool's startTimeout applies.
    let heard = Infinity;
    pinger = setInterval(() => {
      if (Date.now() - heard > SILENCE_MS) {
        silenced = true;
        console.error(
          `distex: no word from ${host} for ${SILENCE_MS} ms; giving the link up`,
        );
        clearInterval(pinger);
        transport.kill();
        return;
      }
      writer.send(encodeLinkFrame(LinkOp.Ping, 0)).catch(() => {});
    }, PING_MS);
    relayDone = (async () => {
      try {
        for await (const chunk of readable) {
          heard = Date.now();
          parser.push(chunk);
        }
      } catch (error) {
        console.error(
          `distex: link to ${host} broke: ${
            error instanceof Error ? error.message : error
          }`,
        );
        transport.kill();
      }
      clearInterval(pinger);
      for (const channel of channels.values()) channel.end();
      channels.clear();
    })();
  }
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= sent.then(() => writer.drained()).then(() =>
      transport.closeWrite()
    ).catch(() => {});
  const exited = transport.exited.then(async (exit) => {
    await relayDone;
    await stop();
    return exit;
  });
  const control = (c: Control) => {
    if (stopped) return;
    writer.send(encodeControl(c)).catch(() => {});
  };
  return {
    exited,
    host,
    respawns: true,
    stderrTail: () => transport.stderrTail(),
    failure: (exit, timeoutMs) =>
      silenced
        ? new HostError(
          host,
          `the link went silent for ${SILENCE_MS} ms before the workers connected`,
          transport.stderrTail().join("\n"),
        )
        : failure(exit, transport.stderrTail(), timeoutMs),
    stop,
    kill: (signal) => transport.kill(signal),
    killWorker: (id) => control({ kind: "kill", id }),
    ref: (on) => {
      transport.ref?.(on);
      if (pinger === undefined) return;
      if (on) Deno.refTimer(pinger as unknown as number);
      else Deno.unrefTimer(pinger as unknown as number);
    },
  };
}
