// Heavy new/delete through libstdc++: node containers, strings, vectors that
// grow, shared ownership across threads, and objects deleted by a thread
// other than their maker. Prints checksums only, so the output is the same
// under any allocator; a corrupted heap changes a checksum or crashes.
#include <cstdint>
#include <cstdio>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

uint64_t hash_string(const std::string &s)
{
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s)
        h = (h ^ c) * 1099511628211ull;
    return h;
}

// Node containers: every insert is a new, every erase a delete.
uint64_t containers()
{
    std::map<std::string, std::vector<int>> tree;
    std::unordered_map<uint64_t, std::string> hashed;
    std::list<std::string> chain;
    uint64_t h = 0;
    for (int i = 0; i < 200000; i++) {
        std::string key = "key" + std::to_string(i * 7919 % 50021);
        auto &v = tree[key];
        v.push_back(i);
        if (v.size() > 5)
            tree.erase(key);
        hashed[(uint64_t)i * 2654435761u % 65521] = std::string((size_t)(i % 300), char('a' + i % 26));
        chain.push_back(std::to_string(i));
        if (chain.size() > 1000)
            chain.pop_front();
    }
    for (auto &kv : tree) {
        h = mix(h, hash_string(kv.first));
        for (int x : kv.second)
            h = mix(h, (uint64_t)x);
    }
    uint64_t unordered = 0; // order-independent: iteration order is the library's
    for (auto &kv : hashed)
        unordered += mix(kv.first, hash_string(kv.second));
    h = mix(h, unordered);
    for (auto &s : chain)
        h = mix(h, hash_string(s));
    return mix(h, tree.size() + hashed.size() + chain.size());
}

// Vectors and strings that grow by doubling, across every size tier.
uint64_t growth()
{
    uint64_t h = 0;
    for (int round = 0; round < 6; round++) {
        std::vector<uint64_t> v;
        std::string s;
        size_t limit = (size_t)64 << (round * 3); // 64 .. 2M elements
        if (limit > ((size_t)1 << 19))
            limit = (size_t)1 << 19;
        for (size_t i = 0; i < limit; i++) {
            v.push_back(i * i);
            if (i % 3 == 0)
                s += char('A' + i % 26);
        }
        v.shrink_to_fit();
        s.shrink_to_fit();
        h = mix(h, v.back());
        h = mix(h, hash_string(s));
    }
    return h;
}

struct Payload {
    std::vector<uint32_t> data;
    std::string label;
    explicit Payload(uint32_t seed)
        : data((size_t)(seed % 2000) + 1, seed), label("payload-" + std::to_string(seed))
    {
    }
};

// Producer threads hand unique_ptrs to consumers, which delete them.
uint64_t handoff()
{
    std::mutex lock;
    std::condition_variable cv;
    std::deque<std::unique_ptr<Payload>> queue;
    const int producers = 3, consumers = 3, per_producer = 40000;
    int finished = 0;
    std::vector<uint64_t> sums((size_t)consumers, 0);
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; p++)
        threads.emplace_back([&, p] {
            for (int i = 0; i < per_producer; i++) {
                auto item = std::make_unique<Payload>((uint32_t)(p * per_producer + i));
                std::unique_lock<std::mutex> g(lock);
                cv.wait(g, [&] { return queue.size() < 512; });
                queue.push_back(std::move(item));
                cv.notify_all();
            }
            std::lock_guard<std::mutex> g(lock);
            finished++;
            cv.notify_all();
        });
    for (int c = 0; c < consumers; c++)
        threads.emplace_back([&, c] {
            for (;;) {
                std::unique_ptr<Payload> item;
                {
                    std::unique_lock<std::mutex> g(lock);
                    cv.wait(g, [&] { return !queue.empty() || finished == producers; });
                    if (queue.empty())
                        return;
                    item = std::move(queue.front());
                    queue.pop_front();
                    cv.notify_all();
                }
                // A sum is independent of which consumer got which item.
                sums[(size_t)c] += item->data.size() * item->data[0] + hash_string(item->label) % 1000;
            } // item deleted here, by a thread that did not allocate it
        });
    for (auto &t : threads)
        t.join();
    uint64_t total = 0;
    for (uint64_t s : sums)
        total += s;
    return total;
}

// Shared ownership: a graph of shared_ptrs built and torn down by threads.
uint64_t shared_graph()
{
    std::vector<std::shared_ptr<std::vector<std::string>>> nodes;
    for (int i = 0; i < 20000; i++)
        nodes.push_back(std::make_shared<std::vector<std::string>>((size_t)(i % 8), std::to_string(i)));
    std::vector<std::thread> threads;
    std::vector<uint64_t> sums(4, 0);
    for (int t = 0; t < 4; t++)
        threads.emplace_back([&, t, copy = nodes] () mutable {
            for (size_t i = (size_t)t; i < copy.size(); i += 4) {
                for (auto &s : *copy[i])
                    sums[(size_t)t] += hash_string(s) % 97;
                copy[i].reset(); // the last owner may be this thread or main
            }
        });
    nodes.clear();
    for (auto &t : threads)
        t.join();
    return sums[0] + sums[1] + sums[2] + sums[3];
}

// Raw new[]/delete[] of mixed sizes, a sliding window of live arrays.
uint64_t arrays()
{
    std::vector<std::unique_ptr<unsigned char[]>> live(512);
    std::vector<size_t> sizes(512, 0);
    uint64_t h = 0, r = 88172645463325252ull;
    for (int i = 0; i < 300000; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        size_t slot = r % 512;
        if (live[slot]) {
            h = mix(h, live[slot][0] + live[slot][sizes[slot] - 1]);
        }
        size_t n = (r >> 20) % 8 == 0 ? (size_t)(r >> 32) % (1 << 20) + 1 : (size_t)(r >> 32) % 1024 + 1;
        live[slot].reset(new unsigned char[n]);
        live[slot][0] = (unsigned char)i;
        live[slot][n - 1] = (unsigned char)(i >> 8);
        sizes[slot] = n;
    }
    return h;
}

} // namespace

int main()
{
    std::printf("containers %016llx\n", (unsigned long long)containers());
    std::printf("growth     %016llx\n", (unsigned long long)growth());
    std::printf("handoff    %llu\n", (unsigned long long)handoff());
    std::printf("shared     %llu\n", (unsigned long long)shared_graph());
    std::printf("arrays     %016llx\n", (unsigned long long)arrays());
    return 0;
}
