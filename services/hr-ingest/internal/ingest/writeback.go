package ingest

import (
	"github.com/orgsync/orgsync/services/hr-ingest/internal/bamboohr"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/hibob"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/personio"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/source"
	"github.com/orgsync/orgsync/services/hr-ingest/internal/writeback"
)

// WriteBackSources builds the write-back of every source that asked for one, by source name,
// for writeback.Sink: a signed webhook when the source configures one, else the vendor's API.
func WriteBackSources(configs []source.Config) map[string]writeback.Source {
	sources := map[string]writeback.Source{}
	for _, cfg := range configs {
		cfg = cfg.WithDefaults()
		if !cfg.WriteBack.Enabled() {
			continue
		}
		var writer writeback.Writer
		switch {
		case cfg.WriteBack.Callback.URL != "":
			writer = writeback.NewCallback(cfg.WriteBack.Callback.URL, cfg.Name, cfg.WriteBack.Callback.Secret, nil, nil)
		case cfg.WritesThroughAPI() && cfg.Kind == source.KindBambooHR:
			writer = bamboohr.NewWriter(cfg.API.BaseURL, cfg.API.Token, cfg.WriteBack.UsernameField, nil)
		case cfg.WritesThroughAPI() && cfg.Kind == source.KindHiBob:
			writer = hibob.NewWriter(cfg.API.BaseURL, cfg.API.User, cfg.API.Token, cfg.WriteBack.UsernameField, nil)
		case cfg.WritesThroughAPI() && cfg.Kind == source.KindPersonio:
			client := personio.NewClient(cfg.API.BaseURL, cfg.API.User, cfg.API.Token, cfg.Location, nil)
			writer = personio.NewWriter(client, cfg.WriteBack.UsernameField)
		default:
			continue // Validate refuses such a source
		}
		sources[cfg.Name] = writeback.Source{Config: cfg.WriteBack, Writer: writer}
	}
	return sources
}
