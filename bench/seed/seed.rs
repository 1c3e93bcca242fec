// The seed post's Rust program, as published: spawn threads that sleep 1 s, keep every
// handle, then join them all. The count is an argument (default 1,000,000, as in the post;
// its loop `1..count` spawns one fewer). Build: rustc -O seed.rs   Run: ./seed [COUNT]
use std::thread;
use std::time::Duration;

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(1_000_000);
    let mut handles = Vec::with_capacity(count);
    for _ in 1..count {
        handles.push(thread::spawn(|| {
            thread::sleep(Duration::from_millis(1000));
        }));
    }
    for handle in handles {
        handle.join().unwrap();
    }
}
