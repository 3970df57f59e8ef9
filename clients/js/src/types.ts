// Wire types of protocol/spec.md, in the SDK's data model: message ids are
// decimal strings [IM-1.2-5]; every other integer is a number. Absent
// optional fields are undefined (a writer may omit zero values [IM-1.2-7]).

/** A message id ([IM-3.3-4]) as a decimal string, e.g. "362388381503488". */
export type MessageId = string;

/** A message body: any object ([IM-4.2], [IM-12.1]). */
export type Body = Record<string, unknown>;

/** Message types of v1 ([IM-4.2], [IM-12.1], [IM-11.2], [IM-14.1-2]). */
export const MessageType = {
  Text: "text",
  Custom: "custom",
  Image: "image",
  Voice: "voice",
  Video: "video",
  File: "file",
  Location: "location",
  System: "system",
  Group: "group",
  Recalled: "recalled",
} as const;

/** Event kinds ([IM-5.1], [IM-14.4], [IM-15.1], [IM-16.2]) and the client's own `reset`. */
export const EventKind = {
  Message: "message",
  Read: "read",
  Error: "error",
  Recall: "recall",
  Edit: "edit",
  Delete: "delete",
  Settings: "settings",
  Typing: "typing",
  /**
   * Made by the client, never sent by the server: the server no longer has
   * the events after the cursor (sync answered reset, or its latest seq is
   * below the cursor). Its `latest_seq` is the server's latest seq, where the
   * cursor now is; rebuild state from conversations and history [IM-5.2-7].
   */
  Reset: "reset",
} as const;

/** A stored message as delivered [IM-4.3-1]. */
export interface Message {
  id: MessageId;
  conv: string;
  seq: number;
  from: string;
  cmid: string;
  type: string;
  body: Body;
  ts: number;
  mentions?: string[];
  read_by?: number;
}

/** An error object [IM-6.2-1]. */
export interface ErrorObject {
  code: string;
  message?: string;
  /** With rate_limited: milliseconds from now after which a retry can succeed [IM-6.2-1]. */
  retry_after_ms?: number;
}

/** A user's settings of a conversation [IM-16.1-1]. */
export interface ConvSettings {
  pinned: boolean;
  muted: boolean;
  archived: boolean;
  draft: string;
  ts?: number;
}

/**
 * An inbox event [IM-5.1-1]. `seq` is the inbox seq, absent (0) for
 * ephemeral events (error, typing). Unknown kinds are delivered too; they
 * move the cursor like any stored event [IM-5.1-5].
 */
export interface Event {
  kind: string;
  seq?: number;
  conv?: string;
  conv_seq?: number;
  msg?: Message;
  user?: string;
  cmid?: string;
  error?: ErrorObject;
  ts?: number;
  state?: string;
  settings?: ConvSettings;
  [field: string]: unknown;
}

/** A success PUBACK of a send [IM-4.4-2]. */
export interface Sent {
  /** The cmid the message was sent with. */
  cmid: string;
  /** The message id. */
  id: MessageId;
  conv: string;
  /** The conversation seq. */
  seq: number;
  /**
   * The sender's inbox seq of the message; 0 when the PUBACK answered a
   * retry or the message went to a read-fan-out group. The cursor never moves
   * to it: the event itself still arrives.
   */
  inboxSeq: number;
}

export interface SyncResult {
  events: Event[];
  has_more: boolean;
  latest_seq: number;
  reset?: boolean;
}

export interface HistoryRequest {
  conv?: string;
  with?: string;
  before?: number;
  after?: number;
  limit?: number;
  read_by?: boolean;
}

export interface HistoryResult {
  conv: string;
  messages: Message[];
  has_more: boolean;
}

export interface Conversation {
  conv: string;
  kind: string;
  peer?: string;
  name?: string;
  last_seq: number;
  read_seq: number;
  peer_read_seq: number;
  unread: number;
  last?: Message;
  settings?: ConvSettings;
}

export interface ConversationsResult {
  conversations: Conversation[];
  total_unread: number;
}

export interface ReadResult {
  conv: string;
  read_seq: number;
  unread: number;
}

export interface ReadItem {
  conv: string;
  seq: number;
}

export interface GroupChangeResult {
  group: string;
  conv_seq: number;
  fanout: string;
  read_from?: number;
}

export interface GroupMember {
  user: string;
  role: string;
  muted?: boolean;
  read_seq: number;
}

export interface GroupInfo {
  group: string;
  name?: string;
  avatar?: string;
  notice?: string;
  fanout: string;
  read_from?: number;
  last_seq: number;
  member_count: number;
  members: GroupMember[];
}

export interface GroupCreateRequest {
  members?: string[];
  name?: string;
  avatar?: string;
  notice?: string;
}

export interface GroupUpdateRequest {
  name?: string;
  avatar?: string;
  notice?: string;
}

export interface Contact {
  user: string;
  contact: boolean;
  blocked: boolean;
  since?: number;
}

export interface Presence {
  user: string;
  online: boolean;
  last_seen?: number;
  error?: ErrorObject;
}

export interface SettingsChange {
  pinned?: boolean;
  muted?: boolean;
  archived?: boolean;
  draft?: string;
}

export interface SettingsResult {
  conv: string;
  settings: ConvSettings;
}

/** The result of a media upload [IM-12.2-1]. */
export interface Upload {
  id: string;
  url: string;
  mime: string;
  size: number;
  sha256: string;
  name?: string;
}

/** A live presence publish [IM-15.3-1]. */
export interface PresenceUpdate {
  user: string;
  online: boolean;
  last_seen?: number;
}
