package dev.pet.engine;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoraAdapter;
import ai.onnxruntime.OrtSession;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;

/**
 * An ONNX Runtime adapter file ({@code .onnx_adapter}) loaded once and activated per run: its tensors override the
 * graph inputs of the same names for the runs that name it, so one session serves many adapters. Safe to share
 * between threads; close it only when no run uses it.
 */
public final class OrtAdapter implements AutoCloseable {
    private final String name;
    private final Path file;
    private final OrtLoraAdapter adapter;

    private OrtAdapter(String name, Path file, OrtLoraAdapter adapter) {
        this.name = name;
        this.file = file;
        this.adapter = adapter;
    }

    /** Loads {@code file} under {@code name} (used in messages and metrics). */
    public static OrtAdapter load(String name, Path file) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(file, "file");
        if (!Files.isRegularFile(file)) {
            throw new EngineException("adapter '" + name + "': " + file + " is not a file");
        }
        try {
            return new OrtAdapter(name, file, OrtLoraAdapter.create(file.toString()));
        } catch (OrtException e) {
            throw new EngineException("adapter '" + name + "': ONNX Runtime cannot load " + file + ": "
                    + e.getMessage(), e);
        }
    }

    public String name() {
        return name;
    }

    public Path file() {
        return file;
    }

    /** Run options with this adapter active; the caller closes them. */
    OrtSession.RunOptions runOptions() {
        OrtSession.RunOptions ro = null;
        try {
            ro = new OrtSession.RunOptions();
            ro.addActiveLoraAdapter(adapter);
            return ro;
        } catch (OrtException e) {
            if (ro != null) {
                ro.close();
            }
            throw new EngineException("adapter '" + name + "': cannot activate it: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        adapter.close();
    }
}
