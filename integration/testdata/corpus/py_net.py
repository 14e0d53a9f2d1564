# asyncio with a local socket server, http.server fetched over loopback,
# and ssl with a certificate the sandbox made (argv[1]: cert, argv[2]: key).
import asyncio, http.server, socket, ssl, sys, threading, urllib.request

async def echo_main():
    async def handle(reader, writer):
        data = await reader.readline()
        writer.write(data.upper()); await writer.drain(); writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello asyncio\n"); await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close(); server.close(); await server.wait_closed()
    proc = await asyncio.create_subprocess_exec("echo", "child", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    await asyncio.sleep(0.01)
    return line.decode().strip(), out.decode().strip()
print("asyncio", *asyncio.run(echo_main()))

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("path=" + self.path).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
with urllib.request.urlopen("http://127.0.0.1:%d/corpus" % httpd.server_address[1], timeout=10) as resp:
    print("http.server", resp.status, resp.read().decode())
httpd.shutdown()

cert, key = sys.argv[1], sys.argv[2]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(cert, key)
lsock = socket.create_server(("127.0.0.1", 0))
port = lsock.getsockname()[1]
def tls_server():
    conn, _ = lsock.accept()
    with sctx.wrap_socket(conn, server_side=True) as s:
        s.sendall(s.recv(100)[::-1])
threading.Thread(target=tls_server, daemon=True).start()
cctx = ssl.create_default_context(cafile=cert)
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with cctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"olleh-tls")
        print("ssl", s.version(), s.recv(100).decode())
print("PY NET OK")
