/**
 * The failures the facade's callers are expected to tell apart, one class each, so a front
 * end maps them by class (an HTTP status, whether to retry) and never by message text. The
 * message is for people and may be reworded freely.
 *
 * Also part of this contract, defined where they arise: MagnetError (a bad magnet link) and
 * MetainfoError (a torrent Shoal cannot take) in metainfo/, ImportError and its kinds in
 * library/import.ts, ContentUnavailableError and UnknownContentError in downloads/content.ts,
 * PatternError in catalog/glob.ts, SettingsError (a setting that cannot be taken) in
 * config/settings.ts, ConfigError (the config file is wrong, or cannot keep a change) in
 * config/config-file.ts, and RangeError for a byte range outside a file.
 */
import os from 'node:os';

/** Nothing known answers to the target now: no peer shares that name or infohash. It may appear later: worth retrying. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** A name matches several different files; the message lists them. Ask again by infohash. */
export class AmbiguousTargetError extends Error {
  override name = 'AmbiguousTargetError';
  constructor(
    message: string,
    readonly candidates: ReadonlyArray<{ name: string; infohash: string }>,
  ) {
    super(message);
  }
}

/** The target can never be downloaded as given: empty, or a .torrent file that cannot be read. */
export class BadTargetError extends Error {
  override name = 'BadTargetError';
}

/** No download (in any state) has this infohash. */
export class UnknownDownloadError extends Error {
  override name = 'UnknownDownloadError';
}

/** A selection of files that cannot be taken: nothing selected, a file the torrent does not have, a pattern no file matches. */
export class SelectionError extends Error {
  override name = 'SelectionError';
}

/** Who holds a folder lock: a running node's process, its peer port (0 until bound) and start time. */
export interface LockHolder {
  pid: number;
  port: number;
  /** The holder's host name: a pid means something on that host only. */
  host: string;
  /** ms since the epoch. */
  startedAt: number;
}

/**
 * Another node runs on this download or state folder (both would write the same files).
 * `holder` names it (null when its lock file cannot be read); the front end says how to
 * give this node folders of its own.
 */
export class FolderLockedError extends Error {
  override name = 'FolderLockedError';
  constructor(
    readonly folder: string,
    readonly lockFile: string,
    readonly holder: LockHolder | null,
  ) {
    super(
      holder
        ? `${folder} is in use by another Shoal node (pid ${holder.pid}${holder.port ? `, port ${holder.port}` : ''}${holder.host !== os.hostname() ? ` on ${holder.host}` : ''}, since ${new Date(holder.startedAt).toISOString()})`
        : `${folder} is in use by another Shoal node (its lock ${lockFile} is being written or cannot be read)`,
    );
  }
}

/** The shared folder is missing, not a folder, or cannot be read: nothing would be shared. */
export class SharedFolderError extends Error {
  override name = 'SharedFolderError';
  constructor(
    readonly folder: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A torrent to seed whose data is not all here: `found` of its `pieces` pieces are, in `path`
 * (none: no file of its size holds any). Downloading it instead fetches the rest.
 */
export class NoDataError extends Error {
  override name = 'NoDataError';
  constructor(
    message: string,
    readonly found: number,
    readonly pieces: number,
    readonly path?: string,
  ) {
    super(message);
  }
}
