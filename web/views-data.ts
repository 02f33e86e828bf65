/**
 * The node's own shapes turned into the contract's (web/contract.ts): what the pages, the
 * API and the socket.io events all show. Pure functions of the node's state.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  lanIPv4Addresses, makeMagnet,
  type Node, type DownloadInfo, type DownloadDetail as NodeDownloadDetail, type SearchResult, type KnownPeer, type DiscoveryHealth, type PeerSource,
  type SharedFile, type NodeSettings,
} from '../network/index.js';
import type { DownloadDetail, DownloadView, FileView, PeerView, SearchResultView, SeedingResponse, SettingsView, Status } from './contract.js';

type DiscoveryView = Status['discovery'][number];

/** package.json's version: two folders up from dist/web, one from web/. */
export const VERSION: string = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, '..', '..', 'package.json'), path.join(here, '..', 'package.json')]) {
    try {
      const v = (JSON.parse(fs.readFileSync(p, 'utf8')) as { name?: string; version?: string });
      if (v.name === 'shoal' && typeof v.version === 'string') return v.version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
})();

export const torrentUrl = (h: string) => `/api/files/${h}/torrent`;
export const contentUrl = (h: string) => `/api/files/${h}/content`;

/** This machine's IPv4 addresses, loopback excluded. */
export function machineAddresses(): string[] {
  return lanIPv4Addresses();
}

export function discoveryView(source: PeerSource, h: DiscoveryHealth): DiscoveryView {
  return {
    source: source === 'bootstrap' ? 'bootstrap' : 'multicast',
    state: h.state,
    ...(h.detail !== undefined && { detail: h.detail }),
    since: h.since,
    ...(h.lastOk !== undefined && { lastOk: h.lastOk }),
  };
}

const active = (d: DownloadInfo) => d.state === 'downloading' || d.state === 'paused';

export function statusView(node: Node, httpUrl: string): Status {
  const t = node.totals();
  return {
    id: node.id,
    name: node.name,
    swarm: node.secretFingerprint,
    version: VERSION,
    startedAt: node.startedAt,
    peerPort: node.port,
    announceHost: node.announceHost,
    addresses: machineAddresses(),
    httpUrl,
    sharedDir: node.sharedDir,
    downloadDir: node.downloadDir,
    discovery: node
      .discovery()
      .filter((d) => d.source === 'multicast' || d.source === 'bootstrap')
      .map((d) => discoveryView(d.source, d.health)),
    totals: {
      peers: node.peerCount().peers, // not those that do not answer: the Peers page lists them apart
      files: node.files().length,
      activeDownloads: node.listDownloads().filter(active).length,
      seeding: node.seeding().length,
      downloadRate: t.downloadRate,
      uploadRate: t.uploadRate,
      downloaded: t.downloaded,
      uploaded: t.uploaded,
    },
  };
}

export function peerView(p: KnownPeer): PeerView {
  return {
    key: p.key,
    ...(p.id !== undefined && { id: p.id }),
    ...(p.name !== undefined && { name: p.name }),
    host: p.host,
    port: p.port,
    sources: [...p.sources],
    firstSeen: p.firstSeen,
    lastSeen: p.lastSeen,
    reachable: p.reachable,
  };
}

export function fileView(node: Node, f: SharedFile): FileView {
  const h = f.metainfo.infoHashHex;
  return {
    name: f.name,
    size: f.size,
    infohash: h,
    holders: node.holders(h),
    magnet: node.magnet(h) ?? makeMagnet(f.metainfo),
    torrentUrl: torrentUrl(h),
    contentUrl: contentUrl(h),
    files: f.metainfo.files.filter((x) => !x.pad).length,
  };
}

export function downloadView(d: DownloadInfo): DownloadView {
  return {
    infohash: d.infohash,
    name: d.name,
    size: d.length,
    state: d.state,
    progress: d.state === 'done' ? 1 : d.pieces > 0 ? Math.min(1, d.verified / d.pieces) : 0,
    pieces: d.pieces,
    verified: d.verified,
    downloadRate: d.downloadRate,
    uploadRate: d.uploadRate,
    downloaded: d.downloaded,
    uploaded: d.uploaded,
    // The node's own rule: null unless downloading at a measurable rate.
    eta: d.eta,
    peers: d.peers,
    startedAt: d.startedAt,
    ...(d.path !== undefined && { path: d.path }),
    ...(d.error !== undefined && { error: d.error }),
    contentUrl: contentUrl(d.infohash),
    multiFile: d.multiFile,
    files: d.files,
    selectedFiles: d.selectedFiles,
  };
}

export function downloadDetailView(d: NodeDownloadDetail): DownloadDetail {
  return {
    ...downloadView(d),
    pieceMap: d.bitfield.toString('base64'),
    pieceCount: d.pieceCount,
    peerList: d.peerList.map((p) => ({
      address: p.address,
      client: p.client,
      downloaded: p.downloaded,
      uploaded: p.uploaded,
      downloadRate: p.downloadRate,
      uploadRate: p.uploadRate,
      has: Math.max(0, Math.min(1, p.has)),
      outgoing: p.outgoing,
    })),
    fileList: d.fileList.map((f) => ({
      index: f.index,
      path: f.path,
      size: f.length,
      selected: f.selected,
      verified: f.verified,
      contentUrl: `${contentUrl(d.infohash)}?file=${f.index}`,
    })),
  };
}

function searchResultView(node: Node, r: SearchResult, downloading: ReadonlySet<string>): SearchResultView {
  return {
    infohash: r.infohash,
    name: r.name,
    size: r.size,
    sources: r.peers.length,
    peers: r.peers.map((p) => ({ ...(p.id !== undefined && { id: p.id }), host: p.host, port: p.port })),
    via: r.via,
    local: node.file(r.infohash) !== undefined,
    downloading: downloading.has(r.infohash),
  };
}

/** Search results as the page and the API show them: each marked shared here or downloading. */
export function searchResultViews(node: Node, results: SearchResult[]): SearchResultView[] {
  const downloading = new Set(node.listDownloads().filter(active).map((d) => d.infohash));
  return results.map((r) => searchResultView(node, r, downloading));
}

export function fileViews(node: Node): FileView[] {
  return node
    .files()
    .map((f) => fileView(node, f))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function downloadViews(node: Node): DownloadView[] {
  return node.listDownloads().map(downloadView);
}

export function peerViews(node: Node): PeerView[] {
  return node.knownPeers().map(peerView);
}

/** What the node uploads, as GET /api/seeding and the Seeding page show it. */
export function seedingView(node: Node): SeedingResponse {
  const t = node.totals();
  return { seeding: node.seeding(), uploaded: t.uploaded, uploadRate: t.uploadRate };
}

export function settingsView(s: NodeSettings, tokenInUse: boolean): SettingsView {
  const { maxUploadRate, shared, downloads, multicast, bootstrap, configFile, fromCommandLine } = s;
  return { maxUploadRate, shared, downloads, multicast, bootstrap, configFile, fromCommandLine, tokenInUse };
}
