// Command ollama_go renders Modelfile TEMPLATEs with Go's own text/template, in the shape
// Ollama's server gives its templates, so the tests compare Ollama's prompt with the Jinja one.
//
// Input (stdin): a JSON list of {"template": "...", "messages": [...], "tools": [...]}.
// Output (stdout): a JSON list of {"text": "..."} or {"error": "..."}, one per input.
//
// What Ollama does before it executes a template, written here from its documentation and
// behaviour (template.Execute, docs/template.md): consecutive messages of one role are joined
// with a blank line (tool results stay apart), every system message is also joined into
// .System, the template runs with missingkey=zero and a `json` function, and .Response is "".
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type ToolCallFunction struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

type ToolCall struct {
	Function ToolCallFunction `json:"function"`
}

type Message struct {
	Role      string     `json:"role"`
	Content   string     `json:"content"`
	Thinking  string     `json:"thinking,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	ToolName  string     `json:"tool_name,omitempty"`
}

type Case struct {
	Template string    `json:"template"`
	Messages []Message `json:"messages"`
	Tools    []any     `json:"tools"`
}

type Result struct {
	Text  string `json:"text"`
	Error string `json:"error,omitempty"`
}

// joinTurns merges runs of one role into one message and gathers the system text.
func joinTurns(messages []Message) (string, []*Message) {
	var system []string
	var joined []*Message
	for i := range messages {
		m := &messages[i]
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		last := len(joined) - 1
		if last >= 0 && joined[last].Role == m.Role && m.Role != "tool" {
			joined[last].Content += "\n\n" + m.Content
			continue
		}
		joined = append(joined, m)
	}
	return strings.Join(system, "\n\n"), joined
}

func render(c Case) Result {
	funcs := template.FuncMap{"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}}
	parsed, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(c.Template)
	if err != nil {
		return Result{Error: err.Error()}
	}
	system, messages := joinTurns(c.Messages)
	values := map[string]any{
		"System":   system,
		"Messages": messages,
		"Tools":    c.Tools,
		"Response": "",
		"Think":    false,
	}
	var out bytes.Buffer
	if err := parsed.Execute(&out, values); err != nil {
		return Result{Error: err.Error()}
	}
	return Result{Text: out.String()}
}

func main() {
	var cases []Case
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		os.Stderr.WriteString("cannot read the cases: " + err.Error() + "\n")
		os.Exit(2)
	}
	results := make([]Result, len(cases))
	for i, c := range cases {
		results[i] = render(c)
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(1)
	}
}
