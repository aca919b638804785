// Open-loop HTTP load at a fixed rate, latency measured from each request's scheduled send time.
//
// Hand-written because wrk2 is not packaged for Debian and wrk is closed-loop: a closed loop
// waits for answers before sending more, so a stalled server silently lowers the offered load
// and hides the stall from the latency figures (coordinated omission). Here request i is due at
// start + i/rate whatever happened before it, and its latency counts from that moment.
// Standard library only; prints one JSON object on stdout.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

type result struct {
	RatePerS       float64        `json:"rate_per_s"`
	DurationS      float64        `json:"duration_s"`
	Scheduled      int            `json:"scheduled"`
	Completed      int            `json:"completed"`
	OK             int            `json:"ok"`
	Errors         int            `json:"errors"`
	Statuses       map[string]int `json:"statuses"`
	AchievedPerS   float64        `json:"achieved_per_s"`
	P50Ms          float64        `json:"p50_ms"`
	P90Ms          float64        `json:"p90_ms"`
	P99Ms          float64        `json:"p99_ms"`
	P999Ms         float64        `json:"p999_ms"`
	MaxMs          float64        `json:"max_ms"`
	SendLateP99Ms  float64        `json:"send_late_p99_ms"`
	MaxConnections int            `json:"max_connections"`
}

type sample struct {
	latency time.Duration
	late    time.Duration
	status  int
	done    bool
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

func main() {
	url := flag.String("url", "", "where to POST")
	bodyPath := flag.String("body", "", "file holding the request body")
	rate := flag.Float64("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 64, "most connections open at once")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	flag.Parse()
	body, err := os.ReadFile(*bodyPath)
	if err != nil || *url == "" || *rate <= 0 {
		fmt.Fprintln(os.Stderr, "usage: openloop -url URL -body FILE -rate N -duration D", err)
		os.Exit(2)
	}

	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: *timeout}).DialContext,
		MaxConnsPerHost:     *conns,
		MaxIdleConnsPerHost: *conns,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: transport, Timeout: *timeout}

	interval := time.Duration(float64(time.Second) / *rate)
	total := int(duration.Seconds() * *rate)
	samples := make([]sample, total)
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			s := &samples[i]
			s.late = time.Since(due)
			req, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				s.status = resp.StatusCode
			}
			s.latency = time.Since(due)
			s.done = err == nil
		}(i, due)
	}
	wg.Wait()
	elapsed := time.Since(start)

	out := result{
		RatePerS: *rate, DurationS: duration.Seconds(), Scheduled: total,
		Statuses: map[string]int{}, MaxConnections: *conns,
	}
	// Failed requests stay in the latency distribution at the time they took to fail.
	latencies := make([]time.Duration, 0, total)
	lates := make([]time.Duration, 0, total)
	for _, s := range samples {
		latencies = append(latencies, s.latency)
		lates = append(lates, s.late)
		if !s.done {
			out.Errors++
			continue
		}
		out.Completed++
		out.Statuses[fmt.Sprint(s.status)]++
		if s.status >= 200 && s.status < 300 {
			out.OK++
		}
	}
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	sort.Slice(lates, func(a, b int) bool { return lates[a] < lates[b] })
	out.AchievedPerS = float64(out.OK) / elapsed.Seconds()
	out.P50Ms = percentile(latencies, 0.50)
	out.P90Ms = percentile(latencies, 0.90)
	out.P99Ms = percentile(latencies, 0.99)
	out.P999Ms = percentile(latencies, 0.999)
	out.MaxMs = percentile(latencies, 1)
	out.SendLateP99Ms = percentile(lates, 0.99)
	json.NewEncoder(os.Stdout).Encode(out)
}
