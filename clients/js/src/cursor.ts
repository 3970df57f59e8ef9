// Cursor stores: where a device keeps its inbox cursor, the highest inbox
// seq up to which the application has been handed every event [IM-5.2-3].

/**
 * CursorStore keeps the inbox cursor. The client loads it once at connect
 * and saves it after each event is handed to the application; it never
 * calls it concurrently. A device with no saved cursor is new (0).
 */
export interface CursorStore {
  load(): Promise<number> | number;
  save(seq: number): Promise<void> | void;
}

/** MemoryCursor keeps the cursor in memory (lost when the process ends). */
export class MemoryCursor implements CursorStore {
  seq: number;
  constructor(seq = 0) {
    this.seq = seq;
  }
  load(): number {
    return this.seq;
  }
  save(seq: number): void {
    this.seq = seq;
  }
}

/** The part of the Web Storage API that LocalStorageCursor uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

function parseSeq(s: string | null | undefined, where: string): number {
  if (s === null || s === undefined || s === "") return 0;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`mqim: ${where} does not hold a cursor`);
  return n;
}

/**
 * LocalStorageCursor keeps the cursor in the browser's localStorage (or
 * any Storage given) under key. Use one key per user and device, e.g.
 * `mqim.cursor.${user}.${clientId}`.
 */
export class LocalStorageCursor implements CursorStore {
  private readonly storage: StorageLike;
  constructor(
    readonly key: string,
    storage?: StorageLike,
  ) {
    const s = storage ?? (globalThis as { localStorage?: StorageLike }).localStorage;
    if (!s) throw new Error("mqim: no localStorage here; pass a Storage");
    this.storage = s;
  }
  load(): number {
    return parseSeq(this.storage.getItem(this.key), `localStorage[${this.key}]`);
  }
  save(seq: number): void {
    this.storage.setItem(this.key, String(seq));
  }
}

/** The part of the IndexedDB API that IndexedDBCursor uses. */
type IDB = {
  open(name: string, version?: number): IDBOpenDBRequest;
};

/**
 * IndexedDBCursor keeps the cursor in IndexedDB: database dbName, object
 * store "cursor", under key. For browsers (and workers) without
 * localStorage, or apps that keep their messages in IndexedDB anyway.
 */
export class IndexedDBCursor implements CursorStore {
  private db: Promise<IDBDatabase> | undefined;
  constructor(
    readonly key: string,
    readonly dbName = "mqim",
    private readonly idb?: IDB,
  ) {}

  private open(): Promise<IDBDatabase> {
    if (!this.db) {
      const idb = this.idb ?? (globalThis as { indexedDB?: IDB }).indexedDB;
      if (!idb) return Promise.reject(new Error("mqim: no indexedDB here"));
      this.db = new Promise((resolve, reject) => {
        const req = idb.open(this.dbName, 1);
        req.onupgradeneeded = () => {
          if (!req.result.objectStoreNames.contains("cursor")) req.result.createObjectStore("cursor");
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error ?? new Error("mqim: indexedDB open failed"));
      });
    }
    return this.db;
  }

  async load(): Promise<number> {
    const db = await this.open();
    const v = await new Promise<unknown>((resolve, reject) => {
      const req = db.transaction("cursor", "readonly").objectStore("cursor").get(this.key);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error("mqim: indexedDB read failed"));
    });
    return parseSeq(v === undefined ? null : String(v), `indexedDB ${this.dbName}/${this.key}`);
  }

  async save(seq: number): Promise<void> {
    const db = await this.open();
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction("cursor", "readwrite");
      tx.objectStore("cursor").put(seq, this.key);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error ?? new Error("mqim: indexedDB write failed"));
    });
  }
}
