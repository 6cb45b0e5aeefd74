/**
 * The worker server: a private UNIX socket (in a fresh 0700 temp dir, the
 * socket 0600) that workers connect back to, and the connections it serves.
 * Each connection, accepted or handed in by a launcher ({@link
 * WorkerServer.accept}), is handshaken (`handshake.ts`); then its messages go
 * to the pool. The pool hears of each connection through
 * {@link WorkerServerHooks}: `admit` (may refuse), `connected`, `lost`,
 * `rejected`.
 *
 * @module
 */
import {
  type ByteChannel,
  DEFAULT_MAX_FRAME_BYTES,
  FrameWriter,
} from "./framing.ts";
import { readFrames } from "./frame_reader.ts";
import { type Admission, verifyWorker, welcome } from "./handshake.ts";
import { makeGuardedTempDir } from "./_signal_cleanup.ts";
import {
  parseWorkerMessage,
  type WorkerMessage,
  type WorkerSettings,
} from "./protocol.ts";

/** A worker's connection, once it passed the handshake. */
export interface Connection extends Admission {
  /** Where messages to the worker go. */
  readonly writer: FrameWriter;
  /** Hangs up (the worker exits when it notices). */
  close(): void;
  /**
   * Ends the pool's side of the connection once what was sent is written
   * (an orderly end the worker reads as the end of its work: it exits by
   * itself), still reading what the worker sends until it hangs up.
   */
  end(): void;
}

/** What the server tells the pool. */
export interface WorkerServerHooks {
  /**
   * A peer passed the handshake. Throw to refuse it (an id the pool does not
   * expect, or the pool is closing): it is then hung up on and `rejected`.
   */
  admit(admission: Admission): void;
  /**
   * An admitted worker was welcomed; returns what handles its messages (a
   * handler that throws ends the connection as a protocol breach).
   */
  connected(connection: Connection): (message: WorkerMessage) => void;
  /** An admitted worker's connection ended, for `reason`. */
  lost(connection: Connection, reason: string): void;
  /** A peer failed the handshake or was refused, for `reason`. */
  rejected(reason: string): void;
}

/** How the server treats its peers. */
export interface WorkerServerOptions {
  /** The secret workers must prove they know. */
  secret: string;
  /** The largest frame taken from a welcomed worker. @default {1073741824} */
  maxFrameBytes?: number | undefined;
  /** What workers are told in the welcome. */
  settings: WorkerSettings;
}

/**
 * At most this many connections may be in the handshake at once (a flood of
 * silent peers costs a bounded amount of memory; workers of a pool starting
 * hundreds at once handshake within milliseconds each).
 */
const MAX_UNVERIFIED = 256;

/** Which file this is: inode numbers alone are reused at once on tmpfs. */
function made(stat: Deno.FileInfo): string {
  return `${stat.ino}:${stat.ctime?.getTime()}`;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Refs or unrefs a channel that can (a socket connection; relays cannot). */
function refChannel(channel: ByteChannel, on: boolean): void {
  const c = channel as Partial<Pick<Deno.Conn, "ref" | "unref">>;
  try {
    if (on) c.ref?.();
    else c.unref?.();
  } catch { /* closed */ }
}

/** Listens for workers and serves their connections. */
export class WorkerServer {
  #options: WorkerServerOptions;
  #hooks: WorkerServerHooks;
  #dir: string | undefined;
  #unguard: (() => void) | undefined;
  /** The socket file we listen on (inode, change time), to tell it from a replacement. */
  #made = "";
  #watch: number | undefined;
  #relistening = false;
  /** Connections still in the handshake. */
  #unverified = 0;
  #socketPath: string | undefined;
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> | undefined;
  #channels = new Set<ByteChannel>();
  #serving = new Set<Promise<void>>();
  /** Whether the listener and connections keep the program alive. */
  #refd = true;
  /** Removes the socket's directory if the program exits unclosed. */
  #onUnload = (): void => {
    if (this.#dir === undefined) return;
    try {
      Deno.removeSync(this.#dir, { recursive: true });
    } catch { /* gone already */ }
  };

  /**
   * @param options Secret, frame limit and the welcome's settings.
   * @param hooks What to tell the pool.
   */
  constructor(options: WorkerServerOptions, hooks: WorkerServerHooks) {
    this.#options = options;
    this.#hooks = hooks;
  }

  /** The secret workers prove they know (launchers pass it on). */
  get secret(): string {
    return this.#options.secret;
  }

  /** The socket's path (after {@link listen}). */
  get socketPath(): string {
    if (this.#socketPath === undefined) throw new Error("not listening");
    return this.#socketPath;
  }

  /**
   * Makes the private directory and starts accepting on its socket.
   * @throws {Error} when the directory or the socket cannot be made.
   */
  async listen(): Promise<void> {
    try {
      const guarded = makeGuardedTempDir("distex-");
      this.#dir = guarded.dir;
      this.#unguard = guarded.unguard;
      await Deno.chmod(this.#dir, 0o700);
      const path = `${this.#dir}/pool.sock`;
      globalThis.addEventListener("unload", this.#onUnload);
      this.#socketPath = path;
      this.#bind();
    } catch (error) {
      throw new Error(
        `Cannot start the pool's socket server: ${message(error)}`,
        {
          cause: error,
        },
      );
    }
    this.#accepting = this.#acceptLoop(this.#listener!);
    // A task with write access to the directory can remove the socket or
    // put its own in its place: then no new worker could reach the pool.
    // Once a second, such a change is undone.
    const watch = setInterval(() => this.#keepSocket(), 1_000);
    this.#watch = watch as unknown as number;
    Deno.unrefTimer(this.#watch);
  }

  /** Listens on the socket's path (0600) and notes which file that is. */
  #bind(): void {
    const path = this.#socketPath!;
    this.#listener = Deno.listen({ transport: "unix", path });
    if (!this.#refd) this.#listener.unref();
    Deno.chmodSync(path, 0o600);
    this.#made = made(Deno.lstatSync(path));
  }

  async #keepSocket(): Promise<void> {
    if (this.#relistening || this.#watch === undefined) return;
    const path = this.#socketPath!;
    try {
      const stat = Deno.lstatSync(path);
      if (stat.isSocket && made(stat) === this.#made) return;
    } catch { /* removed */ }
    this.#relistening = true;
    try {
      try {
        this.#listener?.close();
      } catch { /* already closed */ }
      await this.#accepting;
      if (this.#watch === undefined) return; // stopped meanwhile
      Deno.mkdirSync(this.#dir!, { recursive: true, mode: 0o700 });
      Deno.chmodSync(this.#dir!, 0o700);
      try {
        Deno.removeSync(path);
      } catch { /* nothing there */ }
      this.#bind();
      this.#accepting = this.#acceptLoop(this.#listener!);
    } catch {
      /* try again at the next tick */
    } finally {
      this.#relistening = false;
    }
  }

  /**
   * Serves a channel a launcher obtained itself (a relayed link): it is
   * handshaken exactly like an accepted socket connection.
   */
  accept(channel: ByteChannel): void {
    const serving = this.#serve(channel);
    this.#serving.add(serving);
    serving.finally(() => this.#serving.delete(serving));
  }

  /**
   * Whether the listener and the connections keep this program alive: off
   * while the pool is idle, so an unclosed pool does not hold the program.
   */
  setRef(on: boolean): void {
    if (this.#refd === on) return;
    this.#refd = on;
    try {
      if (on) this.#listener?.ref();
      else this.#listener?.unref();
    } catch { /* closed */ }
    for (const channel of this.#channels) refChannel(channel, on);
  }

  /** Closes one channel (idempotent). */
  hangUp(channel: ByteChannel): void {
    if (!this.#channels.delete(channel)) return;
    try {
      channel.close();
    } catch { /* already closed */ }
  }

  /** Half-closes one channel once `writer` has written everything. */
  async #end(channel: ByteChannel, writer: FrameWriter): Promise<void> {
    await writer.drained();
    if (!this.#channels.has(channel)) return;
    const conn = channel as Partial<Deno.Conn>;
    if (typeof conn.closeWrite !== "function") return this.hangUp(channel);
    try {
      await conn.closeWrite();
    } catch {
      this.hangUp(channel);
    }
  }

  /** Stops accepting new connections. */
  async stopListening(): Promise<void> {
    clearInterval(this.#watch);
    this.#watch = undefined;
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    await this.#accepting;
  }

  /**
   * Hangs up on every connection, waits until they are served to their end,
   * and removes the socket's directory.
   */
  async close(): Promise<void> {
    await this.stopListening();
    for (const channel of [...this.#channels]) this.hangUp(channel);
    while (this.#serving.size > 0) {
      await Promise.allSettled([...this.#serving]);
    }
    if (this.#dir) {
      await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
      globalThis.removeEventListener("unload", this.#onUnload);
    }
    this.#unguard?.();
    this.#unguard = undefined;
  }

  async #acceptLoop(listener: Deno.Listener): Promise<void> {
    let pause = 0;
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (
          this.#listener !== listener || this.#watch === undefined ||
          error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.Interrupted
        ) return; // closed
        // Out of file descriptors (EMFILE) or the like: wait, then go on.
        pause = Math.min(pause ? pause * 2 : 10, 1_000);
        await new Promise((resolve) => setTimeout(resolve, pause));
        continue;
      }
      pause = 0;
      if (this.#unverified >= MAX_UNVERIFIED) {
        // A flood of peers that do not answer: hang up on the newest.
        try {
          conn.close();
        } catch { /* already closed */ }
        this.#hooks.rejected(
          `more than ${MAX_UNVERIFIED} connections were waiting for the handshake`,
        );
        continue;
      }
      this.accept(conn);
    }
  }

  async #serve(channel: ByteChannel): Promise<void> {
    this.#channels.add(channel);
    if (!this.#refd) refChannel(channel, false);
    let connection: Connection | undefined;
    let failure: unknown;
    try {
      this.#unverified++;
      let admission: Admission;
      try {
        admission = await verifyWorker(channel, this.#options.secret);
      } finally {
        this.#unverified--;
      }
      this.#hooks.admit(admission);
      const writer = new FrameWriter(channel, () => this.hangUp(channel));
      writer.maxFrameBytes = this.#options.settings.maxFrameBytes;
      connection = {
        ...admission,
        writer,
        close: () => this.hangUp(channel),
        end: () => this.#end(channel, writer),
      };
      welcome(writer, this.#options.settings, admission.proof);
      const onMessage = this.#hooks.connected(connection);
      await readFrames(
        channel,
        (m) => onMessage(parseWorkerMessage(m)),
        {
          maxFrameBytes: this.#options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        },
      );
    } catch (error) {
      failure = error;
    } finally {
      this.hangUp(channel);
    }
    if (connection) {
      this.#hooks.lost(
        connection,
        failure === undefined
          ? "its connection closed"
          : `it broke the protocol (${message(failure)})`,
      );
    } else if (failure !== undefined) {
      this.#hooks.rejected(message(failure));
    }
  }
}
