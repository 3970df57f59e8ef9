// @mqim/sdk: the TypeScript client of mqim. See README.md.
export { Client, parseServer } from "./client.js";
export type { CallOptions, ClientOptions, Following, Logger, Outgoing, SendOptions, Status } from "./client.js";
export { ClientError, ClientErrorCode, ErrorCode, MqimError, Reason, isCode } from "./errors.js";
export type { ErrorCodeValue } from "./errors.js";
export { IndexedDBCursor, LocalStorageCursor, MemoryCursor } from "./cursor.js";
export type { CursorStore, StorageLike } from "./cursor.js";
export { decode, encode, detect } from "./codec.js";
export type { Format } from "./codec.js";
export { newCmid } from "./util.js";
export * from "./types.js";
