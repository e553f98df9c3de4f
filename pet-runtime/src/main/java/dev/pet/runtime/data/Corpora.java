package dev.pet.runtime.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.TextTokenizer;
import dev.pet.runtime.config.DataLoaderConfig;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/** Turns the files of a corpus into a token stream, per {@code data_loader.type}. */
final class Corpora {
    /** Documents longer than this are tokenized in pieces split at line ends, to bound memory. */
    static final int CHUNK_CHARS = 1 << 20;
    /** A single JSON line longer than this is rejected rather than buffered. */
    static final int MAX_JSON_LINE = 64 << 20;

    private static final ObjectMapper JSON = new ObjectMapper();

    private Corpora() {
    }

    static List<String> extensions(DataLoaderConfig.Type type) {
        return switch (type) {
            case WIKITEXT -> List.of(".raw", ".txt", ".tokens");
            case TEXT -> List.of(".txt");
            case JSONL -> List.of(".jsonl");
            case TOKENS -> List.of(".bin", ".npy");
        };
    }

    /** The corpus files in order: the file itself, or the directory's matching files sorted by relative path. */
    static List<Path> files(Path root, DataLoaderConfig.Type type) {
        if (Files.isRegularFile(root)) {
            return List.of(root);
        }
        if (!Files.isDirectory(root)) {
            throw new DataException("dataset_dir " + root + " does not exist");
        }
        List<String> extensions = extensions(type);
        List<Path> files = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(root)) {
            walk.filter(Files::isRegularFile)
                    .filter(p -> extensions.stream().anyMatch(e -> p.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(e)))
                    .sorted(Comparator.comparing(p -> root.relativize(p).toString()))
                    .forEach(files::add);
        } catch (IOException e) {
            throw new DataException("cannot list " + root + ": " + e.getMessage(), e);
        }
        if (files.isEmpty()) {
            throw new DataException("dataset_dir " + root + " has no " + String.join("/", extensions)
                    + " files for data_loader.type " + type.yamlName());
        }
        return files;
    }

    /** Writes the tokens of text-like corpora: EOS between documents (text, wikitext), after each record (jsonl). */
    static void produce(DataLoaderConfig.Type type, List<Path> files, TextTokenizer tokenizer, TokenCache.Sink sink)
            throws IOException {
        long eos = tokenizer.eosTokenId();
        long[] eosIds = eos >= 0 ? new long[] {eos} : new long[0];
        boolean[] first = {true};
        for (Path file : files) {
            try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
                switch (type) {
                    case TEXT -> {
                        separate(first, eosIds, sink);
                        chunks(reader, chunk -> sink.append(tokenizer.encode(chunk), true));
                    }
                    case WIKITEXT -> WikitextCleaner.articles(reader, article -> {
                        separate(first, eosIds, sink);
                        sink.append(tokenizer.encode(article), true);
                    });
                    case JSONL -> jsonl(file, reader, tokenizer, eosIds, sink);
                    case TOKENS -> throw new IllegalArgumentException("tokens corpora are not tokenized");
                }
            } catch (java.nio.charset.CharacterCodingException e) {
                throw new DataException(file + ": not valid UTF-8 (" + e.getMessage() + ")", e);
            }
        }
    }

    private static void separate(boolean[] first, long[] eosIds, TokenCache.Sink sink) {
        if (!first[0]) {
            sink.append(eosIds, true);
        }
        first[0] = false;
    }

    interface ChunkSink {
        void accept(String chunk);
    }

    /** Reads text in pieces of about {@link #CHUNK_CHARS}, cut after a newline so no line is split. */
    static void chunks(Reader reader, ChunkSink sink) throws IOException {
        StringBuilder pending = new StringBuilder();
        char[] buffer = new char[1 << 16];
        int n;
        while ((n = reader.read(buffer)) > 0) {
            pending.append(buffer, 0, n);
            if (pending.length() >= CHUNK_CHARS) {
                int cut = pending.lastIndexOf("\n");
                if (cut >= 0) {
                    sink.accept(pending.substring(0, cut + 1));
                    pending.delete(0, cut + 1);
                }
            }
        }
        if (pending.length() > 0) {
            sink.accept(pending.toString());
        }
    }

    private static void jsonl(Path file, BufferedReader reader, TextTokenizer tokenizer, long[] eosIds,
                              TokenCache.Sink sink) throws IOException {
        String line;
        long lineNumber = 0;
        while ((line = reader.readLine()) != null) {
            lineNumber++;
            if (line.isBlank()) {
                continue;
            }
            String where = file + ":" + lineNumber;
            if (line.length() > MAX_JSON_LINE) {
                throw new DataException(where + ": line longer than " + MAX_JSON_LINE + " characters");
            }
            JsonNode record;
            try {
                record = JSON.readTree(line);
            } catch (JsonProcessingException e) {
                throw new DataException(where + ": invalid JSON: " + e.getOriginalMessage(), e);
            }
            if (record == null || !record.isObject()) {
                throw new DataException(where + ": expected a JSON object with \"text\" or \"prompt\"/\"completion\"");
            }
            JsonNode text = record.get("text");
            JsonNode prompt = record.get("prompt");
            JsonNode completion = record.get("completion");
            if (text != null && prompt == null && completion == null) {
                sink.append(tokenizer.encode(string(where, "text", text)), true);
            } else if (text == null && prompt != null && completion != null) {
                sink.append(tokenizer.encode(string(where, "prompt", prompt)), false);
                sink.append(tokenizer.encode(string(where, "completion", completion)), true);
            } else {
                throw new DataException(where + ": expected either \"text\" or both \"prompt\" and \"completion\", found keys "
                        + iterableToList(record.fieldNames()));
            }
            sink.append(eosIds, true);
        }
    }

    private static String string(String where, String key, JsonNode value) {
        if (!value.isTextual()) {
            throw new DataException(where + ": \"" + key + "\" must be a string, found " + value.getNodeType());
        }
        return value.asText();
    }

    private static List<String> iterableToList(java.util.Iterator<String> it) {
        List<String> list = new ArrayList<>();
        it.forEachRemaining(list::add);
        return list;
    }

    /** Maps pre-tokenized files: {@code .bin} is nanoGPT's raw uint16, {@code .npy} int32/int64/uint16. */
    static TokenSequence pretokenized(List<Path> files) {
        List<TokenSequence> parts = new ArrayList<>();
        for (Path file : files) {
            String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
            try {
                if (name.endsWith(".npy")) {
                    NpyHeader h = NpyHeader.read(file);
                    parts.add(MappedTokens.map(file, h.dataOffset(), h.count(), h.width()));
                } else if (name.endsWith(".bin")) {
                    long size = Files.size(file);
                    if (size % 2 != 0) {
                        throw new DataException(file + ": uint16 .bin has odd size " + size);
                    }
                    parts.add(MappedTokens.map(file, 0, size / 2, MappedTokens.Width.U16));
                } else {
                    throw new DataException(file + ": pre-tokenized data must be .bin (uint16) or .npy");
                }
            } catch (IOException e) {
                throw new DataException("cannot read " + file + ": " + e.getMessage(), e);
            }
        }
        return parts.size() == 1 ? parts.get(0) : new ConcatTokens(parts);
    }
}
