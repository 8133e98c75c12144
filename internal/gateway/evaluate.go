package gateway

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// Evaluate decides r as ServeHTTP would, through the same steps (begin
// and dispatch: the token services' paths, the router, the matched route's
// policy chain), without sending it anywhere: an allowed request is not
// proxied and a token service's request is not answered (their Status is
// 200), nothing is recorded in the decision ring, the stats or the audit
// log. It is the dry run behind `gatehouse test`; r.RemoteAddr is the
// client's address.
func (g *Gateway) Evaluate(r *http.Request) admin.Decision {
	rt := g.acquire()
	defer rt.release()
	x := getExchange()
	defer putExchange(x)
	defer x.Exchange.Done()
	g.begin(rt, x, &discardWriter{h: http.Header{}}, r)
	status := g.dispatch(rt, x, r).statusCode()
	x.Request = r
	var rec decisionRecord
	fillRecord(&rec, x, status, g.now().Sub(x.Start))
	return rec.view()
}

// discardWriter is the client of a dry run.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
