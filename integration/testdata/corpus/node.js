// node: an http server and client over loopback, fs, child_process,
// crypto, timers and a worker thread.
const http = require("http"), fs = require("fs"), cp = require("child_process");
const crypto = require("crypto"), os = require("os"), path = require("path");
const { Worker } = require("worker_threads");

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "node-"));
fs.writeFileSync(path.join(dir, "f.txt"), "node-data");
console.log("fs", fs.readFileSync(path.join(dir, "f.txt"), "utf8"), fs.readdirSync(dir).length);
console.log("child_process", cp.execFileSync("sh", ["-c", "echo $((6*7))"]).toString().trim());
console.log("crypto", crypto.createHash("sha256").update("abc").digest("hex").slice(0, 8));

const server = http.createServer((req, res) => res.end("path=" + req.url));
server.listen(0, "127.0.0.1", () => {
  http.get({ host: "127.0.0.1", port: server.address().port, path: "/corpus" }, (res) => {
    let body = "";
    res.on("data", (d) => (body += d));
    res.on("end", async () => {
      console.log("http", res.statusCode, body);
      server.close();
      const data = await fs.promises.readFile(path.join(dir, "f.txt"), "utf8");
      console.log("fs.promises", data);
      const w = new Worker("require('worker_threads').parentPort.postMessage(6*7)", { eval: true });
      w.on("message", (m) => {
        console.log("worker", m);
        setTimeout(() => { fs.rmSync(dir, { recursive: true }); console.log("NODE OK"); }, 10);
      });
    });
  });
});
