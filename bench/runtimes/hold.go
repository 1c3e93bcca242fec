// The Go counterpart of bench/hold.c. Goroutines are not OS threads, so each one locks itself
// to its own thread (runtime.LockOSThread) and then blocks until released: every goroutine
// held is one OS thread held. Stops at COUNT, or when the runtime refuses a thread: the Go
// runtime then aborts the whole program ("program exceeds 10000-thread limit", or
// "failed to create new OS thread"), so each confirmed thread is also written to stderr
// ("held N"). A second argument raises the runtime's own limit (debug.SetMaxThreads). With
// HOLD_WAIT set it writes "ready" and waits for a line on stdin first.
// Build: go build -o hold_go hold.go   Run: ./hold_go 30000 [MAX_THREADS]
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

func maps() int {
	text, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	return strings.Count(string(text), "\n")
}

func osThreads() int {
	text, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "Threads:") {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "Threads:")))
			return n
		}
	}
	return 0
}

func main() {
	count := 30000
	if len(os.Args) > 1 {
		count, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		limit, _ := strconv.Atoi(os.Args[2])
		debug.SetMaxThreads(limit)
	}
	if os.Getenv("HOLD_WAIT") != "" { // let a test inspect this process first
		fmt.Fprintln(os.Stderr, "ready")
		os.Stdin.Read(make([]byte, 1))
	}
	before, threadsBefore := maps(), osThreads()
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan struct{})
	for held := 1; held <= count; held++ {
		go func() {
			runtime.LockOSThread() // this goroutine now owns its thread until it returns
			started <- struct{}{}
			<-release
			done <- struct{}{}
		}()
		<-started
		fmt.Fprintf(os.Stderr, "held %d\n", held) // the count survives an abort
	}
	peak, threads := maps(), osThreads()
	close(release)
	for i := 0; i < count; i++ {
		<-done
	}
	fmt.Printf("{\"runtime\": \"go\", \"held\": %d, \"maps_before\": %d, \"maps_peak\": %d,"+
		" \"threads_before\": %d, \"os_threads_peak\": %d, \"error\": null}\n",
		count, before, peak, threadsBefore, threads)
}
