/**
 * A worker's writer for tests without processes: it records the frames sent
 * and refuses, as an unsendable value, the arguments `["unsendable"]`.
 *
 * @module
 */
import type { Message } from "../src/framing.ts";
import { CALL_OP, Op } from "../src/protocol.ts";
import type { TaskWriter } from "../src/worker_handle.ts";

/** The ops of the frames that carry one task. */
export const CALL_OPS: Set<number> = new Set<number>(Object.values(CALL_OP));

/** Records what is sent (see the module doc). */
export class FakeWriter implements TaskWriter {
  sent: Message[] = [];
  pendingBytes = 0;
  onWritten: (() => void) | undefined;
  send(message: Message): void {
    const args = message[0] === Op.Calls
      ? message[3] as unknown[]
      : [message[3]];
    if (
      args.some((a) =>
        a !== undefined && JSON.stringify(a) === '["unsendable"]'
      )
    ) {
      throw new DOMException("cannot send", "DataCloneError");
    }
    this.sent.push(message);
  }
  /** Ids of the tasks sent, in order (a Calls frame holds several). */
  calls(): number[] {
    return this.sent.flatMap((m) =>
      m[0] === Op.Calls
        ? m[2] as number[]
        : CALL_OPS.has(m[0])
        ? [m[1] as number]
        : []
    );
  }
}
