package notify

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestResponseError(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		retryAfter     string
		wantErr        error
		wantThrottle   bool
		wantRetryAfter time.Duration
	}{
		{name: "ok", status: http.StatusOK},
		{name: "unauthorized", status: http.StatusUnauthorized, wantErr: ErrUnauthorized},
		{name: "forbidden", status: http.StatusForbidden, wantErr: ErrUnauthorized},
		{name: "not found", status: http.StatusNotFound, wantErr: ErrNotFound},
		{name: "throttled, seconds", status: http.StatusTooManyRequests, retryAfter: "7", wantThrottle: true, wantRetryAfter: 7 * time.Second},
		{name: "throttled, no header", status: http.StatusTooManyRequests, wantThrottle: true},
		{name: "throttled, a date in the past", status: http.StatusTooManyRequests, retryAfter: "Sun, 06 Nov 1994 08:49:37 GMT", wantThrottle: true},
		{name: "server error", status: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.retryAfter != "" {
				resp.Header.Set("Retry-After", tt.retryAfter)
			}
			err := ResponseError("vendor", resp)
			var throttled *ThrottledError
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.wantThrottle:
				if !errors.As(err, &throttled) || throttled.RetryAfter != tt.wantRetryAfter {
					t.Errorf("err = %v, want throttled for %v", err, tt.wantRetryAfter)
				}
			case tt.status >= 300:
				if err == nil || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound) || errors.As(err, &throttled) {
					t.Errorf("err = %v, want a transient error", err)
				}
			default:
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
			}
		})
	}
}
