// Small helpers: ids, delays, abort scopes, an unbuffered async channel.
import { ClientError, ClientErrorCode } from "./errors.js";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  globalThis.crypto.getRandomValues(b);
  return b;
}

/**
 * newCmid returns a fresh client message id: a ULID (26 characters of
 * Crockford base32: 48 bits of milliseconds, 80 random bits), as the spec
 * recommends [IM-3.3-5].
 */
export function newCmid(now = Date.now()): string {
  let out = "";
  let t = now;
  const time: string[] = [];
  for (let i = 0; i < 10; i++) {
    time.push(CROCKFORD[t % 32]!);
    t = Math.floor(t / 32);
  }
  out = time.reverse().join("");
  // 80 random bits = 16 base32 digits of 5 bits.
  const r = randomBytes(10);
  let acc = 0;
  let bits = 0;
  for (const byte of r) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += CROCKFORD[(acc >> bits) & 31]!;
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

export function randomString(n: number): string {
  let s = "";
  for (const b of randomBytes(n)) s += ALPHABET[b % ALPHABET.length]!;
  return s;
}

/** A user id or client id [IM-3.1-1]. */
export function validId(s: string): boolean {
  return /^[A-Za-z0-9_.@-]{1,64}$/.test(s) && new TextEncoder().encode(s).length <= 64;
}

/** The pause before retry attempt+1 of a request: 50 ms doubling to 2 s, jittered. */
export function retryDelay(attempt: number): number {
  const d = Math.min(50 * 2 ** Math.min(attempt, 6), 2000);
  return d / 2 + Math.random() * (d / 2);
}

/** abortReason is the error a fired signal stands for. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  return new ClientError(ClientErrorCode.Aborted, "aborted");
}

/** sleep waits ms or until signal fires (then rejects with its reason). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal!));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * unlimited lifts Node's listener-count warning on a signal that many calls
 * watch at once (every send in flight watches the client's and the
 * connection's signal). Browsers have no such limit.
 */
export function unlimited(signal: AbortSignal): AbortSignal {
  const gbm = (globalThis as { process?: { getBuiltinModule?: (m: string) => unknown } }).process?.getBuiltinModule;
  const events = gbm?.("node:events") as { setMaxListeners?: (n: number, ...t: unknown[]) => void } | undefined;
  events?.setMaxListeners?.(0, signal);
  return signal;
}

/**
 * Scope is an AbortController that fires when any parent fires, or after
 * ms (with a timeout ClientError). dispose() detaches it.
 */
export class Scope {
  readonly ctl = new AbortController();
  private readonly cleanups: (() => void)[] = [];
  constructor(parents: (AbortSignal | undefined)[], ms?: number, timeoutMessage = "timed out") {
    unlimited(this.ctl.signal);
    for (const p of parents) {
      if (!p) continue;
      if (p.aborted) {
        this.ctl.abort(p.reason);
        continue;
      }
      const f = () => this.ctl.abort(p.reason);
      p.addEventListener("abort", f, { once: true });
      this.cleanups.push(() => p.removeEventListener("abort", f));
    }
    if (ms !== undefined && ms > 0 && Number.isFinite(ms)) {
      const t = setTimeout(() => this.ctl.abort(new ClientError(ClientErrorCode.Timeout, timeoutMessage)), ms);
      this.cleanups.push(() => clearTimeout(t));
    }
  }
  get signal(): AbortSignal {
    return this.ctl.signal;
  }
  dispose(): void {
    for (const f of this.cleanups.splice(0)) f();
  }
}

/** untilAbort rejects with signal's reason when it fires. */
export function untilAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(abortReason(signal));
    else signal.addEventListener("abort", () => reject(abortReason(signal)), { once: true });
  });
}

/** race resolves with p, or rejects when signal fires first. */
export function race<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Channel is an unbuffered channel from one producer to one consumer: push
 * resolves when the consumer has taken the value (true) or the channel was
 * closed (false).
 */
export class Channel<T> implements AsyncIterableIterator<T> {
  private waiting: { v: T; taken: (ok: boolean) => void }[] = [];
  private takers: ((r: IteratorResult<T>) => void)[] = [];
  private closed = false;

  push(v: T): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const taker = this.takers.shift();
    if (taker) {
      taker({ value: v, done: false });
      return Promise.resolve(true);
    }
    return new Promise((taken) => this.waiting.push({ v, taken }));
  }

  next(): Promise<IteratorResult<T>> {
    const w = this.waiting.shift();
    if (w) {
      w.taken(true);
      return Promise.resolve({ value: w.v, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((r) => this.takers.push(r));
  }

  return(): Promise<IteratorResult<T>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.taken(false);
    for (const t of this.takers.splice(0)) t({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/** Signal is a coalescing wake-up: notify() resolves the pending wait(). */
export class Signal {
  private flagged = false;
  private waiter: (() => void) | undefined;
  notify(): void {
    this.flagged = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
  wait(): Promise<void> {
    if (this.flagged) {
      this.flagged = false;
      return Promise.resolve();
    }
    return new Promise((r) => {
      this.waiter = () => {
        this.flagged = false;
        r();
      };
    });
  }
}
