# select, selectors, subprocess, threading, tempfile and sqlite3: each
# step prints one line with what it computed.
import os, select, selectors, sqlite3, subprocess, tempfile, threading
from concurrent.futures import ThreadPoolExecutor

r, w = os.pipe()
os.write(w, b"s")
ready, _, _ = select.select([r], [], [], 5)
print("select", ready == [r], os.read(r, 1).decode())
p = select.poll(); p.register(r, select.POLLIN); os.write(w, b"p")
print("poll", p.poll(5000)[0][0] == r, os.read(r, 1).decode())

for cls in (selectors.DefaultSelector, selectors.PollSelector, selectors.SelectSelector):
    sel = cls()
    sel.register(r, selectors.EVENT_READ, data=cls.__name__)
    os.write(w, b"x")
    events = sel.select(5)
    print("selectors", events[0][0].data, os.read(r, 1).decode())
    sel.close()

out = subprocess.run(["sh", "-c", "echo $((6*7))"], capture_output=True, check=True).stdout
print("subprocess run", out.decode().strip())
proc = subprocess.Popen(["sort", "-r"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
o, _ = proc.communicate(b"a\nc\nb\n", timeout=10)
print("subprocess communicate", o.decode().split(), proc.returncode)

lock, total = threading.Lock(), [0]
def add(n):
    for _ in range(n):
        with lock:
            total[0] += 1
ts = [threading.Thread(target=add, args=(1000,)) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
cond, box = threading.Condition(), []
def producer():
    with cond:
        box.append("ping"); cond.notify()
threading.Timer(0.05, producer).start()
with cond:
    cond.wait_for(lambda: box, timeout=5)
with ThreadPoolExecutor(4) as ex:
    squares = list(ex.map(lambda x: x * x, range(5)))
print("threading", total[0], box[0], squares)

with tempfile.TemporaryDirectory() as d:
    with tempfile.NamedTemporaryFile("w+", dir=d, delete=False) as f:
        f.write("temp-data"); name = f.name
    fd, other = tempfile.mkstemp(dir=d); os.close(fd)
    print("tempfile", open(name).read(), len(os.listdir(d)))
    db = sqlite3.connect(os.path.join(d, "t.db"))
    db.execute("pragma journal_mode=wal")
    db.execute("create table t (k text, v integer)")
    db.executemany("insert into t values (?, ?)", [("a", 1), ("b", 2), ("c", 3)])
    db.commit()
    other_conn = sqlite3.connect(os.path.join(d, "t.db"))
    print("sqlite3", other_conn.execute("select group_concat(k, ''), sum(v) from t").fetchone())
    other_conn.close(); db.close()
print("PY IO OK")
