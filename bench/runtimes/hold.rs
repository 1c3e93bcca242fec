// The Rust counterpart of bench/hold.c: std::thread with its default 2 MiB stack (or
// RUST_MIN_STACK), threads block until released. Prints how many were held and the mappings
// at the peak. Each spawn is also written to stderr ("held N"): when mappings run out, a new
// thread's signal stack cannot be mapped and std aborts the whole process. With HOLD_WAIT set
// it writes "ready" and waits for a line on stdin first.
// Build: rustc -O hold.rs   Run: ./hold 30000
use std::sync::{Arc, Condvar, Mutex};

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |text| text.lines().count())
}

fn main() {
    let count: usize = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(30000);
    if std::env::var_os("HOLD_WAIT").is_some() {
        // let a test inspect this process first
        eprintln!("ready");
        let _ = std::io::stdin().read_line(&mut String::new());
    }
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let before = maps();
    let mut threads = Vec::new();
    let mut error = String::new();
    while threads.len() < count {
        let gate = Arc::clone(&gate);
        let spawned = std::thread::Builder::new().spawn(move || {
            let (lock, released) = &*gate;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = released.wait(open).unwrap();
            }
        });
        match spawned {
            Ok(handle) => {
                threads.push(handle);
                eprintln!("held {}", threads.len()); // the count survives an abort
            }
            Err(e) => {
                error = e.to_string();
                break;
            }
        }
    }
    let peak = maps();
    let held = threads.len();
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    for handle in threads {
        handle.join().unwrap();
    }
    println!(
        "{{\"runtime\": \"rust\", \"held\": {held}, \"maps_before\": {before}, \"maps_peak\": {peak}, \"error\": {:?}}}",
        error
    );
    std::process::exit(if held == count { 0 } else { 1 });
}
