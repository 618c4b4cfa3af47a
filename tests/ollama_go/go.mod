module workbench/tests/ollama_go

go 1.19
