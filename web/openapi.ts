/**
 * The OpenAPI 3.1 document of /api, generated from the zod schemas of web/contract.ts
 * (z.toJSONSchema, JSON Schema 2020-12, which OpenAPI 3.1 uses as is): every contract
 * shape is a component, every route names its parameters, body and answers. Served at
 * /api/openapi.json, and through swagger-ui at /api/docs.
 */
import { z } from 'zod';
import * as C from './contract.js';
import { VERSION } from './views-data.js';

type Json = Record<string, unknown>;

/** The contract schemas that become components, by name. */
const COMPONENTS: Record<string, z.ZodType> = {
  Infohash: C.InfohashSchema,
  DiscoveryView: C.DiscoveryViewSchema,
  Totals: C.TotalsSchema,
  Status: C.StatusSchema,
  PeerView: C.PeerViewSchema,
  PeersResponse: C.PeersResponseSchema,
  AddPeerBody: C.AddPeerBodySchema,
  FileView: C.FileViewSchema,
  FilesResponse: C.FilesResponseSchema,
  SearchResultView: C.SearchResultViewSchema,
  SearchResponse: C.SearchResponseSchema,
  DownloadState: C.DownloadStateSchema,
  DownloadView: C.DownloadViewSchema,
  DownloadPeerView: C.DownloadPeerViewSchema,
  DownloadFileView: C.DownloadFileViewSchema,
  SelectFilesBody: C.SelectFilesBodySchema,
  DownloadDetail: C.DownloadDetailSchema,
  DownloadsResponse: C.DownloadsResponseSchema,
  StartDownloadBody: C.StartDownloadBodySchema,
  SeedingPeerView: C.SeedingPeerViewSchema,
  SeedingView: C.SeedingViewSchema,
  SeedingResponse: C.SeedingResponseSchema,
  SettingsView: C.SettingsViewSchema,
  SettingsPatch: C.SettingsPatchSchema,
  TokenRotated: C.TokenRotatedSchema,
  ErrorResponse: C.ErrorResponseSchema,
};

const ref = (name: keyof typeof COMPONENTS) => ({ $ref: `#/components/schemas/${name}` });

function components(): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { uri: (id) => `#/components/schemas/${id}`, unrepresentable: 'any' }) as { schemas: Record<string, Json> };
  for (const s of Object.values(schemas)) {
    delete s.$schema;
    delete s.$id;
  }
  return schemas;
}

/** Query parameters from a zod object schema (its input side: defaults make them optional). */
function queryParameters(schema: z.ZodType, descriptions: Record<string, string> = {}): Json[] {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({
    name,
    in: 'query',
    required: (js.required ?? []).includes(name),
    ...(descriptions[name] && { description: descriptions[name] }),
    schema: s,
  }));
}

const infohashParameter = { name: 'infohash', in: 'path', required: true, schema: ref('Infohash') };

const json = (schema: Json, description: string) => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('ErrorResponse'), description);
const jsonBody = (name: keyof typeof COMPONENTS) => ({ required: true, content: { 'application/json': { schema: ref(name) } } });

/** Answers every route may give. */
const common = {
  '401': error('An access token is required (the dashboard listens beyond loopback, or was given --http-token)'),
  '421': error('Host header is not this machine (DNS rebinding protection, loopback only)'),
};
const changing = {
  ...common,
  '403': error('Cross-site request refused (Origin or Sec-Fetch-Site names another site)'),
  '415': error('The body is not Content-Type: application/json'),
};
const JSON_LIMIT = `${C.MAX_JSON_BYTES / 1024} KiB`;
/** Answers of a route that reads a JSON body. */
const withJsonBody = { ...changing, '413': error(`Body larger than ${JSON_LIMIT}`) };

/** POST /api/downloads/{infohash}/pause or /resume: the same route but for a word or two. */
const downloadAction = (operationId: string, summary: string, ok: string, refused: string) => ({
  post: {
    operationId,
    summary,
    tags: ['downloads'],
    parameters: [infohashParameter],
    responses: { '200': json(ref('DownloadView'), ok), '400': error('Not an infohash'), '404': error('No such download'), '409': error(refused), ...changing },
  },
});

let cached: Json | null = null;

export function openApiDocument(): Json {
  cached ??= build();
  return cached;
}

function build(): Json {
  const paths: Json = {
    '/api/status': {
      get: { operationId: 'getStatus', summary: 'This node: id, name, addresses, discovery health, totals', tags: ['status'], responses: { '200': json(ref('Status'), 'Status'), ...common } },
    },
    '/api/peers': {
      get: {
        operationId: 'listPeers',
        summary: 'Every known peer, or those one source vouches for',
        tags: ['peers'],
        parameters: queryParameters(C.PeersQuerySchema, { source: 'only peers from this discovery source' }),
        responses: { '200': json(ref('PeersResponse'), 'Known peers, freshest first'), '400': error('Unknown source'), ...common },
      },
      post: {
        operationId: 'addPeer',
        summary: 'Add a peer by hand (source "manual")',
        tags: ['peers'],
        requestBody: jsonBody('AddPeerBody'),
        responses: {
          '201': json(ref('PeerView'), 'The peer as the registry now holds it'),
          '400': error('Bad host or port, malformed JSON, or this node itself'),
          ...withJsonBody,
        },
      },
    },
    '/api/files': {
      get: { operationId: 'listFiles', summary: 'Files this node shares', tags: ['files'], responses: { '200': json(ref('FilesResponse'), 'Shared files by name'), ...common } },
      put: {
        operationId: 'uploadFile',
        summary: 'Add a file to the shared folder: the raw bytes are the body, streamed to disk',
        tags: ['files'],
        parameters: queryParameters(C.UploadQuerySchema, { name: 'relative name inside the shared folder (no "..", no absolute path, no NUL)' }),
        requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        responses: {
          '201': json(ref('FileView'), 'Stored, hashed and shared'),
          '400': error('Bad name'),
          '409': error('A file of that name exists (it is left as it was)'),
          '411': error('No Content-Length'),
          '413': error('Larger than allowed'),
          '507': error('Not enough space on the disk'),
          '403': changing['403'],
          ...common,
        },
      },
    },
    '/api/files/{infohash}/torrent': {
      get: {
        operationId: 'getTorrent',
        summary: 'The .torrent of a shared file or a download',
        tags: ['files'],
        parameters: [infohashParameter],
        responses: {
          '200': { description: 'Bencoded metainfo', content: { 'application/x-bittorrent': { schema: { type: 'string', contentMediaType: 'application/x-bittorrent' } } } },
          '400': error('Not an infohash'),
          '404': error('No such file'),
          ...common,
        },
      },
    },
    '/api/files/{infohash}/content': {
      get: {
        operationId: 'getContent',
        summary: 'The bytes of a file, also while it downloads (verified pieces only); one Range per request',
        description:
          'A multi-file torrent (a folder) is read one file at a time: `?file=N`, N the file\'s index in the torrent (a download\'s `fileList`); ' +
          'without it such a torrent answers 400. The same rules apply to each file as to a single one. ' +
          'Without Range the answer is the whole file (200, the whole Content-Length), also while it downloads: each missing piece is fetched first ' +
          'and awaited as the body reaches it; if one does not come in time the connection is cut, so a client sees an incomplete body, never a short ' +
          'one that looks complete. With a Range the answer is that range, or, while it downloads, the part of it verified so far (206; a player asks again for the rest).',
        tags: ['files'],
        parameters: [
          infohashParameter,
          ...queryParameters(C.ContentQuerySchema, { file: "which file of a multi-file torrent (its index); required there, 0 or absent for a single file" }),
          { name: 'Range', in: 'header', required: false, schema: { type: 'string', examples: ['bytes=0-1023', 'bytes=1024-', 'bytes=-500'] } },
        ],
        responses: {
          '200': { description: 'The whole file (streamed as its pieces are verified while it downloads)', content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
          '206': {
            description: 'The range asked for, or the part of it that is verified so far (see Content-Range)',
            headers: { 'Content-Range': { schema: { type: 'string' } } },
            content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
          },
          '400': error('Not an infohash, a bad `file`, or a multi-file torrent asked without `file`'),
          '404': error('No such file or download (or the torrent has no such file)'),
          '416': { ...error('Range outside the file'), headers: { 'Content-Range': { schema: { type: 'string', examples: ['bytes */1048576'] } } } },
          '503': { ...error('The first piece is not downloaded yet (within the wait), or the download is paused or failed with pieces missing'), headers: { 'Retry-After': { schema: { type: 'integer' } } } },
          ...common,
        },
      },
    },
    '/api/search': {
      get: {
        operationId: 'search',
        summary: 'Search every known peer and the bootstrap index; results merged by infohash',
        tags: ['search'],
        parameters: queryParameters(C.SearchQuerySchema, { q: 'part of a file name' }),
        responses: { '200': json(ref('SearchResponse'), 'Results, most sources first'), '400': error('No query'), ...common },
      },
    },
    '/api/downloads': {
      get: { operationId: 'listDownloads', summary: 'Every download with its state and progress', tags: ['downloads'], responses: { '200': json(ref('DownloadsResponse'), 'Downloads'), ...common } },
      post: {
        operationId: 'startDownload',
        summary: 'Start downloading a name, an infohash or a magnet link (JSON), or a .torrent file (its bytes as the body)',
        description:
          `Send \`{"target": "..."}\` as application/json, or the .torrent file itself as ${C.TORRENT_TYPE} (at most ${C.MAX_TORRENT_BODY_BYTES} bytes; ` +
          '`curl --data-binary @x.torrent -H "Content-Type: application/x-bittorrent"`). A target text is never read as a file of the server.',
        tags: ['downloads'],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: ref('StartDownloadBody') },
            [C.TORRENT_TYPE]: { schema: { type: 'string', contentMediaType: C.TORRENT_TYPE } },
          },
        },
        responses: {
          '202': json(ref('DownloadView'), 'Started (or already running, or already shared here: state "done")'),
          '400': error('Bad target, malformed JSON, or an empty .torrent body'),
          '404': error('No known peer has it (within the resolve timeout)'),
          '409': error('The name matches several files: use an infohash'),
          '422': error('The .torrent (sent, or fetched from peers) is not a torrent Shoal can take'),
          ...withJsonBody,
          '413': error(`JSON body larger than ${JSON_LIMIT}, or .torrent larger than ${C.MAX_TORRENT_BODY_BYTES} bytes`),
          '415': error(`The body is neither application/json nor ${C.TORRENT_TYPE}`),
        },
      },
    },
    '/api/downloads/{infohash}': {
      get: {
        operationId: 'getDownload',
        summary: 'One download with its piece map and the peers it uses',
        tags: ['downloads'],
        parameters: [infohashParameter],
        responses: { '200': json(ref('DownloadDetail'), 'Download detail'), '400': error('Not an infohash'), '404': error('No such download'), ...common },
      },
      patch: {
        operationId: 'selectFiles',
        summary: 'Choose which files of a (multi-file) download to fetch',
        description:
          'The files to download from now on, by their `index` in `fileList` (`null`: every file). Files left out are not written, except the ' +
          'pieces they share with selected files, which must be verified whole (their bytes go to a side file in the .part folder and are ' +
          'dropped at the end). Verified pieces are kept whatever changes; the download is done when every piece of the selected files is ' +
          'verified, and only those files are in the finished folder. Only a download in progress (downloading or paused) can change.',
        tags: ['downloads'],
        parameters: [infohashParameter],
        requestBody: jsonBody('SelectFilesBody'),
        responses: {
          '200': json(ref('DownloadDetail'), 'The download with its new selection'),
          '400': error('Not an infohash, a malformed body, an index the torrent does not have, or no file selected'),
          '404': error('No such download'),
          '409': error('The download is done or failed: its files can no longer change'),
          ...withJsonBody,
        },
      },
      delete: {
        operationId: 'removeDownload',
        summary: 'Cancel a download in progress, or take a finished one off the list (keeping or deleting its file)',
        description:
          'A download in progress (downloading or paused) is cancelled: its .part and resume record are deleted (`data=keep` is refused). ' +
          'A finished or failed one needs `data`: `keep` takes it off the list and leaves the file where it is, still shared; ' +
          '`delete` deletes the file too, and stops sharing it.',
        tags: ['downloads'],
        parameters: [
          infohashParameter,
          ...queryParameters(C.RemoveDownloadQuerySchema, { data: 'keep the file, or delete it; required once the download finished or failed' }),
        ],
        responses: {
          '204': { description: 'Cancelled or removed' },
          '400': error('Not an infohash, a bad `data`, or no `data` for a finished or failed download'),
          '404': error('No such download'),
          '409': error('`data=keep` for a download in progress'),
          ...changing,
        },
      },
    },
    '/api/downloads/{infohash}/pause': downloadAction('pauseDownload', 'Pause a download (connections closed, verified pieces kept)', 'Paused', 'Not running'),
    '/api/downloads/{infohash}/resume': downloadAction('resumeDownload', 'Resume a paused download', 'Running', 'Not paused'),
    '/api/seeding': {
      get: {
        operationId: 'getSeeding',
        summary: 'What this node uploads: each file sent or asked for, to which peers, at what rate, with its share ratio',
        tags: ['downloads'],
        responses: { '200': json(ref('SeedingResponse'), 'Uploads since the node started, busiest first'), ...common },
      },
    },
    '/api/settings': {
      get: { operationId: 'getSettings', summary: 'What can change while the node runs, and where changes are kept', tags: ['settings'], responses: { '200': json(ref('SettingsView'), 'Settings now'), ...common } },
      patch: {
        operationId: 'changeSettings',
        summary: 'Change settings now (upload limit, shared folders, multicast, bootstrap server); each change is kept in the config file',
        tags: ['settings'],
        requestBody: jsonBody('SettingsPatch'),
        responses: {
          '200': json(ref('SettingsView'), 'Changed and kept'),
          '400': error('A value that cannot be taken (an unknown field, a folder that does not exist, a bad URL): nothing changed'),
          '500': error('The config file cannot keep the change (unreadable, edited into invalid JSON): nothing changed'),
          ...withJsonBody,
        },
      },
    },
    '/api/settings/token': {
      post: {
        operationId: 'rotateToken',
        summary: 'Rotate the access token: the old one stops working at once; the answer sets this browser\'s cookie to the new one',
        tags: ['settings'],
        responses: {
          '200': { ...json(ref('TokenRotated'), 'The new token, and the URL to open elsewhere'), headers: { 'Set-Cookie': { schema: { type: 'string' } } } },
          '409': error('No access token is in use (the dashboard listens on loopback only)'),
          '500': error('The new token cannot be kept in the state folder: the old one stays'),
          ...changing,
        },
      },
    },
    '/api/openapi.json': {
      get: { operationId: 'getOpenApi', summary: 'This document', tags: ['meta'], responses: { '200': { description: 'OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } }, ...common } },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Shoal node dashboard API',
      version: VERSION,
      description:
        'See and drive a Shoal node. Errors are always `{ "error": "..." }`. When the dashboard listens beyond loopback (or was given a token), ' +
        `send \`Authorization: Bearer <token>\`. State-changing requests from another site are refused; JSON bodies need \`Content-Type: application/json\` (${JSON_LIMIT} at most). ` +
        'Live updates are pushed over socket.io on the same port (events: status, peer-up, peer-down, peer-changed, file-added, file-changed, file-removed, download, download-removed, discovery, settings).',
    },
    servers: [{ url: '/' }],
    tags: ['status', 'peers', 'files', 'search', 'downloads', 'settings', 'meta'].map((name) => ({ name })),
    components: {
      schemas: components(),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The dashboard access token (only when one is in use)' } },
    },
    security: [{}, { bearer: [] }],
    paths,
  };
}
