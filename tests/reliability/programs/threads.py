# Multithreaded: workers allocate objects and hand them to other workers
# through queues, so most objects die in a thread other than their maker's.
import hashlib, queue, threading, time

N_WORKERS = 6
ITEMS = 6000
queues = [queue.Queue(maxsize=256) for _ in range(N_WORKERS)]
results = [None] * N_WORKERS

def worker(k):
    h = hashlib.sha256()
    got = 0
    dst = queues[(k + 1) % N_WORKERS]

    done = False

    def drain():
        nonlocal got, done
        while not done:
            try:
                o = queues[k].get_nowait()
            except queue.Empty:
                return
            if o is None:
                done = True
                return
            h.update(o[2][:16])
            got += 1

    def send(obj):
        # Never block on a full queue: keep draining our own meanwhile.
        while True:
            try:
                dst.put_nowait(obj)
                return
            except queue.Full:
                drain()
                time.sleep(0.0005)

    for i in range(ITEMS):
        size = (i * 2654435761 + k) % 70000 + 1
        send((k, i, bytes([(k + i) % 256]) * size, {"i": i, "s": str(i) * (i % 7)}))
        drain()
    send(None)
    while not done:
        o = queues[k].get()
        if o is None:
            break
        h.update(o[2][:16])
        got += 1
    results[k] = (got, h.hexdigest()[:16])

threads = [threading.Thread(target=worker, args=(k,)) for k in range(N_WORKERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(results, sum(r[0] for r in results))

# Short-lived threads, each with its own garbage.
sink = []
lock = threading.Lock()
def short(k):
    data = [bytes(k % 4000) for _ in range(200)]
    with lock:
        sink.append(sum(len(d) for d in data))
for wave in range(20):
    ts = [threading.Thread(target=short, args=(wave * 10 + j,)) for j in range(10)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
print(len(sink), sum(sink))
