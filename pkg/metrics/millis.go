package metrics

import (
	"strconv"
	"time"
)

func formatMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func parseMillis(value string) (time.Time, bool) {
	ms, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}
