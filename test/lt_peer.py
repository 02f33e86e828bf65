#!/usr/bin/python3
"""A real libtorrent-rasterbar peer for the interop tests, driven by arguments.

    lt_peer.py seed   --torrent F.torrent --dir DIR --port N [--host IP] [--peer HOST:PORT]...
    lt_peer.py fetch  --magnet URI        --dir DIR --port N [--host IP] [--peer HOST:PORT]...
    lt_peer.py fetch  --torrent F.torrent --dir DIR --port N [--host IP] [--peer HOST:PORT]...
        ... [--defaults] [--encryption enabled|forced|disabled] [--rc4] [--rc4-only] [--utp off|on|only]
        [--upload-rate N] [--unchoke-slots N] [--allowed-fast N]
    lt_peer.py create --path FILE_OR_DIR --out F.torrent --piece-length N [--tracker URL]...

DHT, local peer discovery, UPnP and NAT-PMP are always off; it listens on --host (127.0.0.1
unless told) only. uTP is off (TCP only) and encryption disabled unless --defaults
(libtorrent's own settings for both, as it ships: uTP on and tried first, encryption enabled
but not required), --utp (on: TCP and uTP both ways, uTP tried first; only: uTP only) or
--encryption say otherwise. --rc4 makes it prefer RC4 over plaintext when both ends allow
either, --rc4-only allows RC4 alone (no MSE with a plaintext payload). --upload-rate caps what
a seed sends (bytes/s). --unchoke-slots 0 makes it choke every peer for good, those on the
local network too (which libtorrent's peer classes exempt from the slots by default), and no
optimistic unchoke either (libtorrent derives those slots from the regular ones), so that only
its allowed-fast pieces (BEP 6, a set of --allowed-fast pieces, 5 by default) can be downloaded
from it.

It prints one JSON object per line on stdout, each with "t" (the wall clock, in seconds):
{"event": "listening", "port": N}, {"event": "connected", "peer": "ip:port", "incoming": B}
(the first connection only), {"event": "metadata", "infohash": H}, {"event": "first-payload",
"direction": "up"|"down"} (the first piece data sent or received), {"event": "progress", ...}
(with "links": how each peer is connected), {"event": "done", ...}, {"event": "error",
"message": ...}, {"event": "created", "infohash": H}. A seed runs until it is killed; a fetch
exits 0 once the download is complete (the test compares the bytes), 1 on a libtorrent
error; create exits 0.
"""
import argparse
import json
import os
import sys
import time

import libtorrent as lt


# peer_info::utp_socket (bit 17 of the flags in libtorrent 2.0; the Python binding does not name it).
UTP_SOCKET = 1 << 17


def say(event, **fields):
    fields["event"] = event
    fields["t"] = time.time()
    print(json.dumps(fields), flush=True)


def create(a):
    """A v1 torrent (libtorrent 2.0 makes v1+v2 hybrids unless told): what Shoal speaks today."""
    fs = lt.file_storage()
    lt.add_files(fs, a.path)
    t = lt.create_torrent(fs, a.piece_length, flags=lt.create_torrent.v1_only)
    for url in a.tracker:
        t.add_tracker(url)
    t.set_creator("libtorrent " + lt.__version__)
    lt.set_piece_hashes(t, os.path.dirname(os.path.abspath(a.path)))
    data = lt.bencode(t.generate())
    with open(a.out, "wb") as f:
        f.write(data)
    say("created", infohash=str(lt.torrent_info(a.out).info_hashes().v1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["seed", "fetch", "create"])
    ap.add_argument("--torrent")
    ap.add_argument("--magnet")
    ap.add_argument("--dir")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--defaults", action="store_true")
    ap.add_argument("--encryption", choices=["enabled", "forced", "disabled"])
    ap.add_argument("--rc4", action="store_true")
    ap.add_argument("--rc4-only", action="store_true")
    ap.add_argument("--utp", choices=["off", "on", "only"])
    ap.add_argument("--upload-rate", type=int, default=0)
    ap.add_argument("--path")
    ap.add_argument("--out")
    ap.add_argument("--piece-length", type=int)
    ap.add_argument("--tracker", action="append", default=[])
    ap.add_argument("--unchoke-slots", type=int)
    ap.add_argument("--allowed-fast", type=int)
    a = ap.parse_args()
    if a.mode == "create":
        return create(a)

    utp = a.utp or ("on" if a.defaults else "off")
    settings = {
        "listen_interfaces": "%s:%d" % (a.host, a.port),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": utp != "off",
        "enable_outgoing_utp": utp != "off",
        "enable_incoming_tcp": utp != "only",
        "enable_outgoing_tcp": utp != "only",
        "prefer_rc4": a.rc4,
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": a.upload_rate,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
        | lt.alert.category_t.connect_notification | lt.alert.category_t.peer_notification,
        "user_agent": "libtorrent-interop/" + lt.__version__,
    }
    encryption = a.encryption or (None if a.defaults else "disabled")
    if encryption:
        policy = {"enabled": lt.enc_policy.enabled, "forced": lt.enc_policy.forced, "disabled": lt.enc_policy.disabled}[encryption]
        settings["out_enc_policy"] = policy
        settings["in_enc_policy"] = policy
    if a.rc4_only:
        settings["allowed_enc_level"] = lt.enc_level.rc4
    if a.unchoke_slots is not None:
        settings["unchoke_slots_limit"] = a.unchoke_slots
    if a.allowed_fast is not None:
        settings["allowed_fast_set_size"] = a.allowed_fast
    ses = lt.session(settings)
    if a.unchoke_slots is not None:
        # Peers on the local network (loopback included) are always unchoked by default: not here.
        for cid in (lt.session.global_peer_class_id, lt.session.tcp_peer_class_id, lt.session.local_peer_class_id):
            pc = ses.get_peer_class(cid)
            pc["ignore_unchoke_slots"] = False
            ses.set_peer_class(cid, pc)

    params = lt.add_torrent_params()
    if a.torrent:
        params.ti = lt.torrent_info(a.torrent)
    else:
        params = lt.parse_magnet_uri(a.magnet)
    params.save_path = a.dir
    # Running at once: not paused until the session's queue manager gets to it.
    params.flags &= ~lt.torrent_flags.paused
    params.flags &= ~lt.torrent_flags.auto_managed
    if a.mode == "seed":
        params.flags |= lt.torrent_flags.seed_mode
    handle = ses.add_torrent(params)
    for p in a.peer:
        host, port = p.rsplit(":", 1)
        handle.connect_peer((host, int(port)))
    listening = False
    connected = False
    had_metadata = handle.status().has_metadata
    had_payload = False
    last = 0.0
    while True:
        for alert in ses.pop_alerts():
            # The port is known at once, but connections are taken only once the socket listens.
            if isinstance(alert, lt.listen_succeeded_alert) and not listening:
                listening = True
                say("listening", port=ses.listen_port())
            if isinstance(alert, (lt.peer_connect_alert, lt.incoming_connection_alert)) and not connected:
                connected = True
                ep = alert.endpoint
                say("connected", peer="%s:%d" % (ep[0], ep[1]), incoming=isinstance(alert, lt.incoming_connection_alert))
            if isinstance(alert, (lt.torrent_error_alert, lt.file_error_alert)):
                say("error", message=alert.message())
                if a.mode == "fetch":
                    sys.exit(1)
        s = handle.status()
        if not had_metadata and s.has_metadata:
            had_metadata = True
            say("metadata", infohash=str(s.info_hashes.v1))
        payload = s.total_payload_upload if a.mode == "seed" else s.total_payload_download
        if not had_payload and payload > 0:
            had_payload = True
            say("first-payload", direction="up" if a.mode == "seed" else "down", bytes=payload)
        now = time.time()
        if now - last >= 0.5:
            last = now
            # How each peer is connected: uTP or TCP; RC4, or plaintext after an MSE handshake, or plain.
            links = [{"utp": bool(int(p.flags) & UTP_SOCKET), "rc4": bool(p.flags & lt.peer_info.rc4_encrypted),
                      "mse": bool(p.flags & (lt.peer_info.rc4_encrypted | lt.peer_info.plaintext_encrypted))} for p in handle.get_peer_info()]
            say("progress", progress=s.progress, peers=s.num_peers, state=str(s.state), paused=bool(s.flags & lt.torrent_flags.paused), uploaded=s.all_time_upload, links=links)
            # A peer named on the command line is dialled again while nobody is connected.
            if s.num_peers == 0:
                for p in a.peer:
                    host, port = p.rsplit(":", 1)
                    handle.connect_peer((host, int(port)))
        if a.mode == "fetch" and s.is_seeding:
            say("done", infohash=str(s.info_hashes.v1))
            return
        time.sleep(0.01 if connected and not had_payload else 0.05)


if __name__ == "__main__":
    main()
