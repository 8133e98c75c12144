// Command soak drives a mixed REST and SOAP load at a running `gatehouse
// demo` for a while and then checks that the gateway kept its promises:
// no goroutine or memory growth beyond a slack, no 5xx, no answer outside
// the expected ones (the demo's own denials: rate limits, WAF blocks,
// scopes), and gatehouse_requests_total grown by exactly the requests
// sent. scripts/soak.sh starts the demo and runs it; see docs/testing.md.
//
// It exits 0 when every check passes, 1 otherwise, and prints a report
// either way.
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	nsWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	tokProf  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
	msgSec   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
	soapNS   = "http://schemas.xmlsoap.org/soap/envelope/"
	products = "urn:gatehouse:demo:products"
)

// kind is one sort of request in the mix, with the answers it may get.
type kind struct {
	name   string
	weight int
	// expect maps an allowed "STATUS code" (code "" for a success) to
	// true; anything else is a failure of the soak.
	expect map[string]bool
	build  func() *http.Request
}

type counts struct {
	mu sync.Mutex
	m  map[string]map[string]int // kind -> "STATUS code" -> n
}

func (c *counts) add(k, answer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[k] == nil {
		c.m[k] = map[string]int{}
	}
	c.m[k][answer]++
}

func main() {
	base := flag.String("base", "http://127.0.0.1:18080", "the demo gateway")
	admin := flag.String("admin", "http://127.0.0.1:19901", "its admin listener")
	duration := flag.Duration("duration", 3*time.Minute, "how long to hold the load")
	warmup := flag.Duration("warmup", 10*time.Second, "load before the baseline of goroutines and RSS is taken (at most a quarter of -duration)")
	workers := flag.Int("concurrency", 8, "concurrent clients")
	rps := flag.Int("rate", 200, "requests per second in total (0: as fast as possible)")
	reader := flag.String("reader", os.Getenv("READER"), "demo-reader token")
	sales := flag.String("sales", os.Getenv("SALES"), "demo-sales token")
	password := flag.String("password", "alice-demo-password", "alice's password (DEMO ONLY)")
	goroutineSlack := flag.Int("goroutine-slack", 50, "goroutines the gateway may have grown by")
	rssSlackMiB := flag.Float64("rss-slack-mib", 64, "MiB the gateway's RSS may have grown by")
	flag.Parse()
	if *reader == "" || *sales == "" {
		fmt.Fprintln(os.Stderr, "soak: -reader and -sales (or READER and SALES) are required")
		os.Exit(2)
	}

	bearer := func(method, path, tok, body string) func() *http.Request {
		return func() *http.Request {
			var r io.Reader
			if body != "" {
				r = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, *base+path, r)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			return req
		}
	}
	soap := func(op, body string) func() *http.Request {
		return func() *http.Request {
			msg := `<soap:Envelope xmlns:soap="` + soapNS + `"><soap:Header><wsse:Security xmlns:wsse="` + nsWSSE +
				`" xmlns:wsu="` + nsWSU + `">` + usernameToken("alice", *password) + `</wsse:Security></soap:Header><soap:Body>` +
				body + `</soap:Body></soap:Envelope>`
			req, _ := http.NewRequest("POST", *base+"/soap/products", strings.NewReader(msg))
			req.Header.Set("Content-Type", "text/xml; charset=utf-8")
			req.Header.Set("SOAPAction", `"`+products+`/`+op+`"`)
			return req
		}
	}
	set := func(s ...string) map[string]bool {
		m := map[string]bool{}
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	// The rate limit (20/s per client) is on the products-list route: the
	// sales client's list calls and the WAF probes meet it.
	mix := []kind{
		{"rest get by id (reader)", 30, set("200 "), bearer("GET", "/product/p-1001", *reader, "")},
		{"rest list (sales, rate limited)", 20, set("200 ", "429 rate_limited"), bearer("GET", "/product", *sales, "")},
		{"rest create refused by CEL (sales)", 5, set("403 not_catalog", "429 rate_limited"), bearer("POST", "/product", *sales, `{"name":"Lamp","price":25.5,"currency":"EUR"}`)},
		{"rest SQL injection (reader)", 5, set("403 waf_blocked", "429 rate_limited"), bearer("GET", "/product?q=1%27%20OR%20%271%27%3D%271%27%20--", *reader, "")},
		{"rest no token", 5, set("401 missing_credentials"), bearer("GET", "/product/p-1002", "", "")},
		{"soap GetProduct (alice, digest)", 30, set("200 "), soap("GetProduct", `<GetProduct xmlns="`+products+`"><id>p-1002</id></GetProduct>`)},
		{"soap CreateProduct unsigned", 5, set("403 signature_required"), soap("CreateProduct", `<CreateProduct xmlns="`+products+`"><name>K</name><price>3</price><currency>EUR</currency></CreateProduct>`)},
	}
	var wheel []int
	for i, k := range mix {
		for range k.weight {
			wheel = append(wheel, i)
		}
	}

	tr := &http.Transport{MaxIdleConnsPerHost: *workers}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	c := &counts{m: map[string]map[string]int{}}
	var sent atomic.Int64
	var unexpected atomic.Int64
	var samples []string
	var sampleMu sync.Mutex

	// The request count is taken before any load; goroutines and RSS
	// after a warm-up, once connection pools, caches and the WAF's heap
	// have reached their working size.
	before, err := sample(*admin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: first sample:", err)
		os.Exit(1)
	}
	fmt.Printf("soak: %v, %d clients, %d req/s against %s\n", *duration, *workers, *rps, *base)
	fmt.Printf("cold:  %s\n", before)
	*warmup = min(*warmup, *duration/4)
	var warm snapshot
	warmDone := make(chan struct{})
	time.AfterFunc(*warmup, func() {
		defer close(warmDone)
		var err error
		if warm, err = sample(*admin); err != nil {
			fmt.Fprintln(os.Stderr, "soak: warm sample:", err)
			os.Exit(1)
		}
		fmt.Printf("warm:  %s (after %v)\n", warm, *warmup)
	})

	var tick <-chan time.Time
	if *rps > 0 {
		t := time.NewTicker(time.Second / time.Duration(*rps))
		defer t.Stop()
		tick = t.C
	}
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	var n atomic.Uint64
	for range *workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if tick != nil {
					<-tick
				}
				i := wheel[int(n.Add(1))%len(wheel)]
				k := mix[i]
				req := k.build()
				sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					c.add(k.name, "error "+err.Error())
					unexpected.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				answer := fmt.Sprintf("%d %s", resp.StatusCode, code(resp, b))
				c.add(k.name, answer)
				if !k.expect[answer] {
					if unexpected.Add(1) <= 5 {
						sampleMu.Lock()
						samples = append(samples, fmt.Sprintf("%s: %s %.200s", k.name, answer, b))
						sampleMu.Unlock()
					}
				}
			}
		})
	}
	// A progress line every 30 s.
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				if s, err := sample(*admin); err == nil {
					fmt.Printf("  %6d sent: %s\n", sent.Load(), s)
				}
			}
		}
	}()
	wg.Wait()
	close(stopProgress)
	<-warmDone
	// Let the gateway's per-connection goroutines go: close ours, give it
	// a moment.
	tr.CloseIdleConnections()
	time.Sleep(2 * time.Second)
	after, err := sample(*admin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: last sample:", err)
		os.Exit(1)
	}
	fmt.Printf("end:   %s\n\n", after)

	names := make([]string, 0, len(c.m))
	for k := range c.m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Printf("  %-38s %v\n", k, c.m[k])
	}
	fmt.Println()

	ok := true
	check := func(pass bool, format string, args ...any) {
		mark := "ok  "
		if !pass {
			mark, ok = "FAIL", false
		}
		fmt.Printf("%s %s\n", mark, fmt.Sprintf(format, args...))
	}
	total := sent.Load()
	check(unexpected.Load() == 0, "%d of %d answers outside the expected ones", unexpected.Load(), total)
	for _, s := range samples {
		fmt.Println("       ", s)
	}
	fives := 0
	for _, m := range c.m {
		for a, v := range m {
			if strings.HasPrefix(a, "5") || strings.HasPrefix(a, "error") {
				fives += v
			}
		}
	}
	check(fives == 0, "%d 5xx answers or transport errors", fives)
	counted := after.requests - before.requests
	check(counted == float64(total), "gatehouse_requests_total grew by %.0f, requests sent %d", counted, total)
	check(after.goroutines-warm.goroutines <= *goroutineSlack, "goroutines %d warm -> %d at the end (slack %d)", warm.goroutines, after.goroutines, *goroutineSlack)
	growth := (after.rss - warm.rss) / (1 << 20)
	check(growth <= *rssSlackMiB, "RSS %.1f MiB warm -> %.1f MiB at the end (%+.1f, slack %.0f)", warm.rss/(1<<20), after.rss/(1<<20), growth, *rssSlackMiB)
	secs := math.Max(duration.Seconds(), 1)
	fmt.Printf("\n%d requests in %v (%.0f/s)\n", total, *duration, float64(total)/secs)
	if !ok {
		os.Exit(1)
	}
}

// code is the stable code of a problem+json body or of a SOAP Fault
// naming one ("" for anything else).
func code(resp *http.Response, b []byte) string {
	if resp.StatusCode < 300 {
		return ""
	}
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(b, &p) == nil && p.Code != "" {
		return p.Code
	}
	// A SOAP Fault carries the stable code in its faultstring or detail;
	// look for the ones the mix expects before the generic faultcode.
	for _, c := range []string{"rate_limited", "signature_required", "waf_blocked", "FailedAuthentication", "InvalidSecurity"} {
		if strings.Contains(string(b), c) {
			return c
		}
	}
	if m := faultCode.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return "?"
}

var faultCode = regexp.MustCompile(`<faultcode>(?:[^<:]*:)?([^<]*)</faultcode>`)

// usernameToken is a Timestamp and a digest UsernameToken with a fresh
// nonce (WS-Security UsernameToken Profile 1.0).
func usernameToken(user, password string) string {
	created := time.Now().UTC().Format(time.RFC3339)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	h := sha1.New()
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(password))
	return `<wsu:Timestamp><wsu:Created>` + created + `</wsu:Created></wsu:Timestamp><wsse:UsernameToken><wsse:Username>` + user +
		`</wsse:Username><wsse:Password Type="` + tokProf + `#PasswordDigest">` + base64.StdEncoding.EncodeToString(h.Sum(nil)) +
		`</wsse:Password><wsse:Nonce EncodingType="` + msgSec + `#Base64Binary">` + base64.StdEncoding.EncodeToString(nonce) +
		`</wsse:Nonce><wsu:Created>` + created + `</wsu:Created></wsse:UsernameToken>`
}

// snapshot is what the admin listener says about the process.
type snapshot struct {
	goroutines int     // from /debug/pprof/goroutine?debug=1 (go_goroutines if pprof is closed)
	rss        float64 // process_resident_memory_bytes
	// requests is the sum of gatehouse_requests_total over the demo's
	// routes; route="" (no route: the embedded authorization server's
	// endpoints, which the gateway's own jwt authenticator fetches its
	// discovery document and keys from) is left out.
	requests float64
}

func (s snapshot) String() string {
	return fmt.Sprintf("goroutines %d, RSS %.1f MiB, gatehouse_requests_total %.0f", s.goroutines, s.rss/(1<<20), s.requests)
}

func sample(admin string) (snapshot, error) {
	var s snapshot
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 {
			name = line[:i]
			_, rest, _ = strings.Cut(line[strings.IndexByte(line, '}'):], " ")
		}
		v, err := strconv.ParseFloat(strings.Fields(rest + " 0")[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			s.rss = v
		case "go_goroutines":
			s.goroutines = int(v)
		case "gatehouse_requests_total":
			if !strings.Contains(line, `route=""`) {
				s.requests += v
			}
		}
	}
	if r, err := http.Get(admin + "/debug/pprof/goroutine?debug=1"); err == nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if m := regexp.MustCompile(`goroutine profile: total (\d+)`).FindSubmatch(b); m != nil {
			s.goroutines, _ = strconv.Atoi(string(m[1]))
		}
	}
	return s, sc.Err()
}
