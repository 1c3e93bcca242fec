// The seed post's Go program, as published: a million goroutines that sleep 1 s, then wait
// for all of them. The count is an argument (default 1,000,000, as in the post).
// Build: go build -o seed_go seed.go   Run: ./seed_go [COUNT]
package main

import (
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	count := 1000000
	if len(os.Args) > 1 {
		count, _ = strconv.Atoi(os.Args[1])
	}
	var wg sync.WaitGroup
	wg.Add(count)
	for i := 0; i < count; i++ {
		go func() {
			defer wg.Done()
			time.Sleep(time.Second)
		}()
	}
	wg.Wait()
}
