package emulator

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// maxBodyBytes caps a request body after decompression; Graph's own limit is 4 MB.
const maxBodyBytes = 4 << 20

// readJSONObject decodes the request body as one JSON object, undoing the gzip compression
// msgraph-sdk-go applies to every request body.
func readJSONObject(r *http.Request) (map[string]any, error) {
	var body io.Reader = r.Body
	switch encoding := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); encoding {
	case "", "identity":
	case "gzip":
		decompressor, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, malformedJSON()
		}
		defer decompressor.Close()
		body = decompressor
	default:
		return nil, newAPIError(http.StatusUnsupportedMediaType, CodeBadRequest,
			"Content-Encoding '%s' is not supported; send the body uncompressed or gzip-compressed.", encoding)
	}
	payload, err := io.ReadAll(io.LimitReader(body, maxBodyBytes+1))
	if err != nil {
		return nil, malformedJSON()
	}
	if len(payload) > maxBodyBytes {
		return nil, newAPIError(http.StatusRequestEntityTooLarge, CodeBadRequest,
			"The request body exceeds the maximum size of %d bytes.", maxBodyBytes)
	}
	decoder := json.NewDecoder(bytes.NewReader(payload))
	var decoded map[string]any
	if err := decoder.Decode(&decoded); err != nil || decoded == nil {
		return nil, malformedJSON()
	}
	if err := decoder.Decode(new(any)); !errors.Is(err, io.EOF) {
		return nil, malformedJSON()
	}
	return decoded, nil
}

// objectFromBody returns the properties of a request body without instance annotations such as
// "@odata.type" (which msgraph-sdk-go sends) or "displayName@odata.type", at any depth.
// "@odata.bind" annotations other than a group's "members@odata.bind" (taken out before) are
// rejected rather than stored.
func objectFromBody(body map[string]any) (Object, error) {
	cleaned, err := withoutAnnotations(body)
	if err != nil {
		return nil, err
	}
	return Object(cleaned), nil
}

func withoutAnnotations(source map[string]any) (map[string]any, error) {
	cleaned := make(map[string]any, len(source))
	for key, value := range source {
		if strings.HasSuffix(key, "@odata.bind") {
			return nil, newAPIError(http.StatusBadRequest, CodeRequestBadRequest,
				"'%s' is not supported here; bind members with a PATCH of the group.", key)
		}
		if strings.Contains(key, "@") {
			continue
		}
		cleanedValue, err := valueWithoutAnnotations(value)
		if err != nil {
			return nil, err
		}
		cleaned[key] = cleanedValue
	}
	return cleaned, nil
}

func valueWithoutAnnotations(value any) (any, error) {
	switch typed := value.(type) {
	case map[string]any:
		return withoutAnnotations(typed)
	case []any:
		cleaned := make([]any, len(typed))
		for i, element := range typed {
			cleanedElement, err := valueWithoutAnnotations(element)
			if err != nil {
				return nil, err
			}
			cleaned[i] = cleanedElement
		}
		return cleaned, nil
	default:
		return value, nil
	}
}
