# multiprocessing with the fork and the spawn start methods: a pool, a
# queue between processes, and shared memory.
import multiprocessing as mp

def square(x):
    return x * x

def put(q):
    q.put("from-child")

if __name__ == "__main__":
    for method in ("fork", "spawn"):
        ctx = mp.get_context(method)
        with ctx.Pool(2) as pool:
            squares = pool.map(square, range(5))
        q = ctx.Queue()
        p = ctx.Process(target=put, args=(q,)); p.start()
        msg = q.get(timeout=20); p.join()
        v = ctx.Value("i", 41)
        with v.get_lock():
            v.value += 1
        print("multiprocessing", method, squares, msg, p.exitcode, v.value)
    print("PY MP OK")
