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
