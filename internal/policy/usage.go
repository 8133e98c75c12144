package policy

import (
	"context"
	"time"
)

// Usage is a consumer's use of one limit or quota, as the admin API and
// the console show it.
type Usage struct {
	Route  string    `json:"route"`
	Policy string    `json:"policy"`
	Name   string    `json:"name,omitempty"`
	Used   int64     `json:"used"`
	Limit  int64     `json:"limit"`
	Unit   string    `json:"unit"` // requests, bytes
	Resets time.Time `json:"resets,omitzero"`
}

// UsageReporter is implemented by limit policies (quota today) that
// can tell how much of its allowance a consumer has used; the admin API
// and the console show it per consumer. It lives here, with the policy
// contract, so that the admin API depends on the policies' types and no
// policy depends on the admin API.
type UsageReporter interface {
	ConsumerUsage(ctx context.Context, consumer string) ([]Usage, error)
}
