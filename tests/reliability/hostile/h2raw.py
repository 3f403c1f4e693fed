"""A raw HTTP/2 client for hostile gRPC tests: hand-built frames.

hyperframe builds and parses the control frames, hpack encodes the headers;
DATA frames are packed by hand for speed. Unlike h2's connection object this
client does whatever the test says: more streams than the peer's
SETTINGS_MAX_CONCURRENT_STREAMS, HEADERS then RST_STREAM at once, a zero
receive window, never a WINDOW_UPDATE for the peer's DATA. It honours the
peer's flow control for its own DATA (otherwise the peer closes the
connection and nothing else gets tested) and answers PING and SETTINGS.

Every blocking wait takes a timeout: they are safety nets against hangs, not
assertions.
"""

import os
import socket
import struct
import threading
import time
import urllib.parse

import hpack
from hyperframe.frame import (ContinuationFrame, Frame,
                              GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_WINDOW = 2**31 - 1
MAX_DECODED_BLOCK = 1 << 20  # larger header blocks are measured, not decoded

# RST_STREAM / GOAWAY error codes by number, for the report.
H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR",
             3: "FLOW_CONTROL_ERROR", 4: "SETTINGS_TIMEOUT",
             5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
             8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
             11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY",
             13: "HTTP_1_1_REQUIRED"}

GRPC_CODES = {0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT",
              4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 6: "ALREADY_EXISTS",
              7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
              9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE",
              12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
              15: "DATA_LOSS", 16: "UNAUTHENTICATED"}


def grpc_frame(message, compressed=False):
    """The 5-byte gRPC message prefix (flag, big-endian length) + message."""
    return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


def grpc_prefix(length, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, length)


def _unpercent(value):
    # grpc-message is percent-encoded; unquote leaves '+' alone, as it must.
    return urllib.parse.unquote(value, errors="replace")


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None    # response headers, a dict
        self.trailers = None   # trailers, a dict (or headers of a
        #                        trailers-only response)
        self.data_bytes = 0    # response DATA received
        self.data = None       # bytearray when the caller keeps the data
        self.reset = None      # RST_STREAM error code from the server
        self.remote_ended = False
        self.send_window = 0
        self.oversize_block = None  # bytes of a header block not decoded

    @property
    def ended(self):
        return self.remote_ended or self.reset is not None

    def grpc_status(self):
        block = self.trailers if self.trailers is not None else None
        if block is None:
            return None
        status = block.get("grpc-status")
        return int(status) if status is not None else None

    def grpc_message(self):
        if self.trailers is None:
            return None
        return _unpercent(self.trailers.get("grpc-message", ""))

    def outcome(self):
        """A short text: grpc status name, RST_STREAM code, or 'open'."""
        if self.oversize_block is not None:
            return "HEADERS_OF_%d_BYTES" % self.oversize_block
        status = self.grpc_status()
        if status is not None:
            return GRPC_CODES.get(status, str(status))
        if self.reset is not None:
            return "RST_" + H2_ERRORS.get(self.reset, str(self.reset))
        return "open"


class H2Conn:
    """One plaintext HTTP/2 connection to 127.0.0.1:port.

    initial_window: our SETTINGS_INITIAL_WINDOW_SIZE (the peer's send window
    per stream). grant_data: whether received DATA is given back with
    WINDOW_UPDATE (False = the responses are never read). keep_data: keep
    response bodies (for checking them).
    """

    def __init__(self, port, initial_window=65535, grant_data=True,
                 keep_data=False, authority=None, connect_timeout=30):
        self.port = port
        self.authority = authority or "127.0.0.1:%d" % port
        self.grant_data = grant_data
        self.keep_data = keep_data
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=connect_timeout)
        self.sock.settimeout(None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        # Record over-long trailers (the bounded-message row) instead of
        # failing on them.
        self.decoder.max_header_list_size = 1 << 30
        self.decoder.max_allowed_table_size = 1 << 16
        self.cond = threading.Condition()
        self.send_lock = threading.Lock()
        self.streams = {}
        self.next_sid = 1
        self.peer_initial_window = 65535
        self.peer_max_frame = 16384
        self.peer_max_streams = None
        self.conn_send_window = 65535
        self.settings_seen = False
        self.goaway = None        # (last_stream_id, error code, debug data)
        self.closed = False       # the peer closed, or we did
        self.close_reason = None
        self.ping_acks = 0
        self.frames_received = 0
        self.rst_received = 0
        self._header_block = None  # (stream id, end_stream, bytearray)
        self._send(PREFACE + SettingsFrame(0, settings={
            SettingsFrame.ENABLE_PUSH: 0,
            SettingsFrame.INITIAL_WINDOW_SIZE: initial_window,
            # Bigger DATA frames: fewer of them for Python to read.
            SettingsFrame.MAX_FRAME_SIZE: 1 << 20,
        }).serialize())
        if grant_data:
            # Open the connection-level receive window wide too.
            self._send(WindowUpdateFrame(0, window_increment=MAX_WINDOW -
                                         65535).serialize())
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    # ---- sending ---------------------------------------------------------
    def _send(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def new_stream_id(self):
        with self.cond:
            sid = self.next_sid
            self.next_sid += 2
            return sid

    def grpc_headers(self, path, encoding=None, extra=()):
        headers = [(":method", "POST"), (":scheme", "http"),
                   (":path", path), (":authority", self.authority),
                   ("content-type", "application/grpc"), ("te", "trailers")]
        if encoding:
            headers.append(("grpc-encoding", encoding))
        headers.extend(extra)
        return headers

    def header_block(self, headers):
        """An HPACK block that leaves the dynamic table alone (every field
        never-indexed), so the same bytes may be sent any number of times."""
        return self.encoder.encode(
            [hpack.NeverIndexedHeaderTuple(k, v) for k, v in headers])

    def _register(self, sid):
        with self.cond:
            stream = self.streams.get(sid)
            if stream is None:
                stream = Stream(sid)
                stream.send_window = self.peer_initial_window
                if self.keep_data:
                    stream.data = bytearray()
                self.streams[sid] = stream
            return stream

    def headers_frame_bytes(self, sid, block, end_stream=False):
        self._register(sid)
        flags = 0x4 | (0x1 if end_stream else 0)
        return struct.pack(">I", len(block))[1:] + bytes([0x1, flags]) + \
            struct.pack(">I", sid) + block

    def open_stream(self, headers, end_stream=False):
        """Sends HEADERS on a new stream and returns its id. Ids are taken
        and sent under one lock: a HEADERS frame with a lower id than one
        already sent would be a protocol error, whatever the thread."""
        with self.send_lock:
            sid = self.new_stream_id()
            self.sock.sendall(self.headers_frame_bytes(
                sid, self.header_block(headers), end_stream))
        return sid

    @staticmethod
    def rst_frame_bytes(sid, code=8):
        return RstStreamFrame(sid, error_code=code).serialize()

    def send_rst(self, sid, code=8):
        self._send(self.rst_frame_bytes(sid, code))

    @staticmethod
    def data_frame_bytes(sid, payload, end_stream=False):
        return struct.pack(">I", len(payload))[1:] + \
            bytes([0x0, 0x1 if end_stream else 0]) + \
            struct.pack(">I", sid) + payload

    def send_data(self, sid, data, end_stream=False, stall_timeout=30.0,
                  chunk=1 << 20):
        """Sends data on stream sid within the peer's flow-control windows.

        Returns "sent", "reset" (the stream ended first), "closed" or
        "stalled" (no window for stall_timeout seconds: a safety net)."""
        view = memoryview(data)
        offset = 0
        stream = self.streams[sid]
        while offset < len(view) or (end_stream and offset == len(view) == 0):
            with self.cond:
                deadline = time.monotonic() + stall_timeout
                while True:
                    if self.closed:
                        return "closed"
                    if stream.ended:
                        return "reset"
                    room = min(self.conn_send_window, stream.send_window)
                    if room > 0 or len(view) == 0:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return "stalled"
                    self.cond.wait(min(left, 1.0))
                n = min(len(view) - offset, room, chunk)
                self.conn_send_window -= n
                stream.send_window -= n
                frame_max = self.peer_max_frame
            pieces = []
            end = offset + n
            while offset < end or (len(view) == 0 and not pieces):
                size = min(frame_max, end - offset)
                last = offset + size == len(view)
                pieces.append(self.data_frame_bytes(
                    sid, view[offset:offset + size].tobytes(),
                    end_stream and last))
                offset += size
            try:
                self._send(b"".join(pieces))
            except OSError:
                return "closed"
            if len(view) == 0:
                break
        return "sent"

    def ping(self, timeout=60.0):
        """Round trip: when it returns True the peer has read every frame
        sent before it."""
        with self.cond:
            target = self.ping_acks + 1
        try:
            self._send(PingFrame(0, opaque_data=os.urandom(8)).serialize())
        except OSError:
            return False
        with self.cond:
            return self.cond.wait_for(
                lambda: self.ping_acks >= target or self.closed, timeout) \
                and self.ping_acks >= target

    def wait(self, predicate, timeout):
        """Waits until predicate(self) holds (under the lock); a safety net."""
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)

    def wait_settings(self, timeout=30.0):
        return self.wait(lambda c: c.settings_seen or c.closed, timeout)

    def close(self):
        with self.cond:
            self.closed = True
            if self.close_reason is None:
                self.close_reason = "closed by client"
            self.cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # ---- receiving -------------------------------------------------------
    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def _read_loop(self):
        try:
            while True:
                header = self._recv_exact(9)
                length = int.from_bytes(header[0:3], "big")
                ftype = header[3]
                flags = header[4]
                sid = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                body = self._recv_exact(length) if length else b""
                self.frames_received += 1
                if ftype == 0x0:
                    self._on_data(sid, flags, body)
                else:
                    frame, _ = Frame.parse_frame_header(memoryview(header))
                    frame.parse_body(memoryview(body))
                    self._on_frame(frame)
        except (EOFError, OSError) as e:
            with self.cond:
                if self.close_reason is None:
                    self.close_reason = "closed by server" if isinstance(
                        e, EOFError) else "socket error: %s" % e
                self.closed = True
                self.cond.notify_all()
        except Exception as e:  # a frame we cannot parse: record, stop
            with self.cond:
                self.close_reason = "client parse error: %r" % e
                self.closed = True
                self.cond.notify_all()

    def _on_data(self, sid, flags, body):
        payload = body
        if flags & 0x8:  # padded
            pad = body[0]
            payload = body[1:len(body) - pad]
        grant = []
        with self.cond:
            stream = self.streams.get(sid)
            if stream is not None:
                stream.data_bytes += len(payload)
                if stream.data is not None:
                    stream.data += payload
                if flags & 0x1:
                    stream.remote_ended = True
                self.cond.notify_all()
        if self.grant_data and len(body):
            grant.append(WindowUpdateFrame(0, window_increment=len(body)))
            if not flags & 0x1:
                grant.append(WindowUpdateFrame(sid,
                                               window_increment=len(body)))
            self._send(b"".join(f.serialize() for f in grant))

    def _on_headers_done(self, sid, end_stream, block):
        if len(block) > MAX_DECODED_BLOCK:
            # Pure-Python HPACK takes about a second per MiB: record the
            # size instead. The decoder's state is lost, so nothing after
            # this on the connection can be decoded: it is closed.
            with self.cond:
                stream = self.streams.setdefault(sid, Stream(sid))
                stream.oversize_block = len(block)
                stream.remote_ended = True
                self.close_reason = "client stopped: header block of %d " \
                    "bytes" % len(block)
                self.closed = True
                self.cond.notify_all()
            raise EOFError
        headers = dict((k.decode() if isinstance(k, bytes) else k,
                        v.decode("latin-1") if isinstance(v, bytes) else v)
                       for k, v in self.decoder.decode(bytes(block), raw=True))
        with self.cond:
            stream = self.streams.get(sid)
            if stream is None:
                stream = Stream(sid)
                self.streams[sid] = stream
            if stream.headers is None and "grpc-status" not in headers:
                stream.headers = headers
            else:
                stream.trailers = headers
            if end_stream:
                stream.remote_ended = True
            self.cond.notify_all()

    def _on_frame(self, frame):
        if isinstance(frame, HeadersFrame):
            end_stream = "END_STREAM" in frame.flags
            if "END_HEADERS" in frame.flags:
                self._on_headers_done(frame.stream_id, end_stream, frame.data)
            else:
                self._header_block = (frame.stream_id, end_stream,
                                      bytearray(frame.data))
        elif isinstance(frame, ContinuationFrame):
            sid, end_stream, block = self._header_block
            block += frame.data
            if "END_HEADERS" in frame.flags:
                self._header_block = None
                self._on_headers_done(sid, end_stream, block)
        elif isinstance(frame, SettingsFrame):
            if "ACK" in frame.flags:
                return
            with self.cond:
                s = frame.settings
                if SettingsFrame.INITIAL_WINDOW_SIZE in s:
                    delta = s[SettingsFrame.INITIAL_WINDOW_SIZE] - \
                        self.peer_initial_window
                    self.peer_initial_window = \
                        s[SettingsFrame.INITIAL_WINDOW_SIZE]
                    for stream in self.streams.values():
                        stream.send_window += delta
                if SettingsFrame.MAX_FRAME_SIZE in s:
                    self.peer_max_frame = s[SettingsFrame.MAX_FRAME_SIZE]
                if SettingsFrame.MAX_CONCURRENT_STREAMS in s:
                    self.peer_max_streams = \
                        s[SettingsFrame.MAX_CONCURRENT_STREAMS]
                self.settings_seen = True
                self.cond.notify_all()
            self._send(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(frame, WindowUpdateFrame):
            with self.cond:
                if frame.stream_id == 0:
                    self.conn_send_window += frame.window_increment
                else:
                    stream = self.streams.get(frame.stream_id)
                    if stream is not None:
                        stream.send_window += frame.window_increment
                self.cond.notify_all()
        elif isinstance(frame, PingFrame):
            if "ACK" in frame.flags:
                with self.cond:
                    self.ping_acks += 1
                    self.cond.notify_all()
            else:
                self._send(PingFrame(0, flags=["ACK"],
                                     opaque_data=frame.opaque_data).serialize())
        elif isinstance(frame, RstStreamFrame):
            with self.cond:
                self.rst_received += 1
                stream = self.streams.get(frame.stream_id)
                if stream is None:
                    stream = Stream(frame.stream_id)
                    self.streams[frame.stream_id] = stream
                stream.reset = frame.error_code
                self.cond.notify_all()
        elif isinstance(frame, GoAwayFrame):
            with self.cond:
                self.goaway = (frame.last_stream_id, frame.error_code,
                               bytes(frame.additional_data))
                self.cond.notify_all()

    # ---- summaries -------------------------------------------------------
    def outcomes(self, sids=None):
        """Counts of each stream's outcome, e.g. {'OK': 3, 'open': 1}."""
        with self.cond:
            counts = {}
            for sid, stream in self.streams.items():
                if sids is not None and sid not in sids:
                    continue
                key = stream.outcome()
                counts[key] = counts.get(key, 0) + 1
            return counts

    def goaway_text(self):
        if self.goaway is None:
            return None
        return "GOAWAY %s last_stream %d%s" % (
            H2_ERRORS.get(self.goaway[1], self.goaway[1]), self.goaway[0],
            (" '%s'" % self.goaway[2][:60].decode("latin-1"))
            if self.goaway[2] else "")


def merge_counts(*dicts):
    out = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def counts_text(counts):
    return ", ".join("%s %d" % (k, v) for k, v in sorted(counts.items())) \
        or "none"
