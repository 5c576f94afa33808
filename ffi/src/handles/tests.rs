//! Tests of `handles`: the slab, its handles, its free lists and per-thread caches.

use super::*;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

struct Counted(Arc<AtomicUsize>, u64);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn locate_covers_segments() {
    assert_eq!(locate(0), (0, 0));
    assert_eq!(locate(63), (0, 63));
    assert_eq!(locate(64), (1, 0));
    assert_eq!(locate(191), (1, 127));
    assert_eq!(locate(192), (2, 0));
    assert_eq!(locate(MAX_SLOTS - 1), (NSEG - 1, (SEG0 << (NSEG - 1)) - 1));
}

#[test]
fn insert_get_remove_and_stale() {
    let drops = Arc::new(AtomicUsize::new(0));
    let slab = Slab::new(Tag::Pool);
    let h = slab.insert(Counted(drops.clone(), 7)).unwrap();
    assert_ne!(h, 0);
    assert_eq!(slab.get(h).unwrap().1, 7);
    drop(slab.remove(h).unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let e = slab.get(h).err().unwrap();
    assert_eq!(e.code(), Code::InvalidHandle);
    assert!(e.message().contains("no longer valid"), "{}", e.message());
    assert_eq!(slab.remove(h).err().unwrap().code(), Code::InvalidHandle);
    // The slot is reused with a new generation; the old handle stays invalid.
    let h2 = slab.insert(Counted(drops.clone(), 8)).unwrap();
    assert_eq!(h2 & INDEX_MASK, h & INDEX_MASK);
    assert_ne!(h2, h);
    assert!(slab.get(h).is_err());
    assert_eq!(slab.get(h2).unwrap().1, 8);
    drop(slab);
    assert_eq!(drops.load(Ordering::SeqCst), 2, "drop frees live values");
}

#[test]
fn wrong_type_null_and_garbage() {
    let pools: Slab<u32> = Slab::new(Tag::Pool);
    let leases: Slab<u32> = Slab::new(Tag::Lease);
    let p = pools.insert(1).unwrap();
    let e = leases.get(p).err().unwrap();
    assert_eq!(e.code(), Code::InvalidHandle);
    assert_eq!(
        e.message(),
        "expected a sb_lease handle but got a sb_pool handle"
    );
    assert!(leases.get(0).err().unwrap().message().contains("NULL"));
    let garbage = 0x7fff_1234_5678usize;
    assert!(
        leases
            .get(garbage)
            .err()
            .unwrap()
            .message()
            .contains("not a switchboard handle")
    );
    // Right tag, index beyond anything allocated.
    let far = encode(Tag::Lease, 0, MAX_SLOTS - 1);
    assert_eq!(leases.get(far).err().unwrap().code(), Code::InvalidHandle);
}

#[test]
fn value_outlives_removal_while_in_use() {
    let drops = Arc::new(AtomicUsize::new(0));
    let slab = Slab::new(Tag::Lease);
    let h = slab.insert(Counted(drops.clone(), 1)).unwrap();
    let user = slab.get(h).unwrap();
    drop(slab.remove(h).unwrap());
    assert!(slab.get(h).is_err(), "removed handles are invalid at once");
    assert_eq!(drops.load(Ordering::SeqCst), 0, "still in use");
    assert_eq!(user.1, 1);
    drop(user);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "last user drops it");
}

#[test]
fn grows_past_first_segment_and_reuses() {
    let slab: Slab<usize> = Slab::new(Tag::Config);
    let hs: Vec<usize> = (0..500).map(|i| slab.insert(i).unwrap()).collect();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(*slab.get(*h).unwrap(), i);
    }
    for h in &hs {
        drop(slab.remove(*h).unwrap());
    }
    let again: Vec<usize> = (0..500).map(|i| slab.insert(i).unwrap()).collect();
    assert_eq!(slab.fresh.load(Ordering::SeqCst), 500, "slots reused");
    for h in &hs {
        assert!(slab.get(*h).is_err());
    }
    for h in &again {
        assert!(slab.get(*h).is_ok());
    }
}

/// Many threads race to remove the same handles while others use them: exactly
/// one removal wins per handle and every value is dropped exactly once.
#[test]
fn racing_removals_and_users() {
    const ROUNDS: usize = 2_000;
    const THREADS: usize = 4;
    let drops = Arc::new(AtomicUsize::new(0));
    let slab = Arc::new(Slab::new(Tag::Lease));
    let wins = Arc::new(AtomicUsize::new(0));
    for round in 0..ROUNDS {
        let h = slab.insert(Counted(drops.clone(), round as u64)).unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (slab, wins, barrier) = (slab.clone(), wins.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    if t % 2 == 0 {
                        if let Ok(r) = slab.remove(h) {
                            assert_eq!(r.1, round as u64);
                            wins.fetch_add(1, Ordering::SeqCst);
                        }
                    } else if let Ok(r) = slab.get(h) {
                        assert_eq!(r.1, round as u64);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    assert_eq!(wins.load(Ordering::SeqCst), ROUNDS);
    assert_eq!(drops.load(Ordering::SeqCst), ROUNDS);
    assert!(slab.fresh.load(Ordering::SeqCst) <= THREADS as u32 + 1);
}

/// Threads inserting and removing their own handles concurrently share the free
/// list without losing or duplicating slots.
#[test]
fn concurrent_insert_remove() {
    let slab = Arc::new(Slab::<u64>::new(Tag::Lease));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let slab = slab.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    let v = (t << 32) | i;
                    let h = slab.insert(v).unwrap();
                    assert_eq!(*slab.get(h).unwrap(), v);
                    drop(slab.remove(h).unwrap());
                    assert!(slab.get(h).is_err());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(slab.fresh.load(Ordering::SeqCst) <= 8);
}

thread_local! {
    static TEST_FREE: LocalFree = const { LocalFree::new(test_give_back) };
}
fn test_give_back(slot: *const ()) {
    // SAFETY: called by `TEST_FREE`'s drop with an address from that cache, which is
    // `CACHED`'s alone.
    unsafe { CACHED.give_back(slot) };
}
struct TestCache;
// SAFETY: `TEST_FREE` is `CACHED`'s cache alone.
unsafe impl LocalCache for TestCache {
    fn with<R>(f: impl FnOnce(&LocalFree) -> R) -> Option<R> {
        TEST_FREE.try_with(f).ok()
    }
}
static CACHED: Slab<(u64, u64), TestCache> = Slab::with_local_cache(Tag::Manager);

/// A slab with per-thread free caches: handles made on one thread and removed on
/// another, threads that exit with slots in their cache; no slot is ever handed
/// out twice and the slab does not grow without bound.
#[test]
fn per_thread_free_cache() {
    use std::sync::mpsc;
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 5_000;
    for _round in 0..3 {
        let (tx, rx) = mpsc::sync_channel::<usize>(64);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let makers: Vec<_> = (0..THREADS)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..PER_THREAD {
                        let h = CACHED.insert((t, i)).unwrap();
                        if i % 2 == 0 {
                            tx.send(h).unwrap(); // removed by another thread
                        } else {
                            mine.push((h, i));
                        }
                        if mine.len() > 8 {
                            let (h, i) = mine.remove(0);
                            assert_eq!(*CACHED.get(h).unwrap(), (t, i));
                            drop(CACHED.remove(h).unwrap());
                        }
                    }
                    for (h, i) in mine {
                        assert_eq!(*CACHED.get(h).unwrap(), (t, i));
                        drop(CACHED.remove(h).unwrap());
                    }
                })
            })
            .collect();
        drop(tx);
        let removers: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    loop {
                        let h = match rx.lock().unwrap().recv() {
                            Ok(h) => h,
                            Err(_) => return,
                        };
                        let (t, i) = *CACHED.get(h).unwrap();
                        assert!(t < THREADS && i < PER_THREAD && i % 2 == 0);
                        drop(CACHED.remove(h).unwrap());
                        assert!(CACHED.get(h).is_err());
                    }
                })
            })
            .collect();
        for t in makers.into_iter().chain(removers) {
            t.join().unwrap();
        }
    }
    // Every thread gave its cache back on exit; slots were reused across rounds.
    let fresh = CACHED.fresh.load(Ordering::SeqCst) as u64;
    assert!(
        fresh < THREADS * PER_THREAD / 4,
        "{fresh} slots for a bounded working set"
    );
}

/// `remove_then` shows the value before it goes, drops it in place at once when
/// unused, and leaves it to the last user otherwise; a second removal is refused.
#[test]
fn remove_then_owned_and_shared() {
    let drops = Arc::new(AtomicUsize::new(0));
    let slab = Slab::new(Tag::Lease);
    let h = slab.insert(Counted(drops.clone(), 5)).unwrap();
    let mut seen = 0;
    slab.remove_then(h, |v| seen = v.1).unwrap();
    assert_eq!((seen, drops.load(Ordering::SeqCst)), (5, 1));
    let e = slab.remove_then(h, |_| panic!("not called")).err().unwrap();
    assert_eq!(e.code(), Code::InvalidHandle);
    assert!(
        e.message().contains("released or discarded"),
        "{}",
        e.message()
    );

    let h = slab.insert(Counted(drops.clone(), 6)).unwrap();
    let user = slab.get(h).unwrap();
    slab.remove_then(h, |v| seen = v.1).unwrap();
    assert_eq!((seen, drops.load(Ordering::SeqCst)), (6, 1), "still in use");
    assert!(slab.get(h).is_err());
    drop(user);
    assert_eq!(drops.load(Ordering::SeqCst), 2, "the last user dropped it");
    assert_eq!(slab.fresh.load(Ordering::SeqCst), 1, "one slot, reused");
}

struct PanicsOnDrop(bool);
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.0 {
            panic!("this drop panics (on purpose)");
        }
    }
}

/// A value whose drop panics still gives its slot back, under a new generation.
#[test]
fn panicking_drop_recycles_the_slot() {
    let slab = Slab::new(Tag::Config);
    let h = slab.insert(PanicsOnDrop(true)).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drop(slab.remove(h).unwrap());
    }));
    assert!(r.is_err());
    assert!(slab.get(h).is_err());
    let h2 = slab.insert(PanicsOnDrop(false)).unwrap();
    assert_eq!(h2 & INDEX_MASK, h & INDEX_MASK, "the slot was recycled");
    assert_ne!(h2, h);
    assert_eq!(slab.fresh.load(Ordering::SeqCst), 1);
}

thread_local! {
    static REUSE_FREE: LocalFree = const { LocalFree::new(reuse_give_back) };
}
fn reuse_give_back(slot: *const ()) {
    // SAFETY: called by `REUSE_FREE`'s drop with an address from that cache, which is
    // `REUSE`'s alone.
    unsafe { REUSE.give_back(slot) };
}
struct ReuseCache;
// SAFETY: `REUSE_FREE` is `REUSE`'s cache alone.
unsafe impl LocalCache for ReuseCache {
    fn with<R>(f: impl FnOnce(&LocalFree) -> R) -> Option<R> {
        REUSE_FREE.try_with(f).ok()
    }
}
static REUSE: Slab<u64, ReuseCache> = Slab::with_local_cache(Tag::Resource);

/// On one thread, a release followed by an acquire gets the same slot back (from the
/// thread's cache, by address) with a new generation, in every segment; the old
/// handles stay invalid.
#[test]
fn thread_cache_reuses_slots_by_address() {
    std::thread::spawn(|| {
        // Fill past the first two segments (64 + 128 slots), then cycle each one.
        let hs: Vec<usize> = (0..300u64).map(|i| REUSE.insert(i).unwrap()).collect();
        for (i, h) in hs.iter().enumerate() {
            REUSE.remove_then(*h, |v| assert_eq!(*v, i as u64)).unwrap();
            let again = REUSE.insert(1000 + i as u64).unwrap();
            assert_eq!(again & INDEX_MASK, h & INDEX_MASK);
            assert_ne!(again, *h);
            assert!(REUSE.get(*h).is_err());
            assert_eq!(*REUSE.get(again).unwrap(), 1000 + i as u64);
            drop(REUSE.remove(again).unwrap());
        }
    })
    .join()
    .unwrap();
    // The thread's cache went back to the shared list when it exited: a new thread
    // reuses those slots instead of taking fresh ones.
    let fresh = REUSE.fresh.load(Ordering::SeqCst);
    std::thread::spawn(|| {
        let hs: Vec<usize> = (0..64u64).map(|i| REUSE.insert(i).unwrap()).collect();
        for h in hs {
            drop(REUSE.remove(h).unwrap());
        }
    })
    .join()
    .unwrap();
    assert_eq!(REUSE.fresh.load(Ordering::SeqCst), fresh);
}
