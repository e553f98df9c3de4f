package dev.pet.gpt2.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import ai.onnxruntime.OrtEnvironment;
import dev.pet.api.PetException;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Graph;
import dev.pet.gpt2.Gpt2Weights;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Model;
import java.io.IOException;
import java.io.InputStream;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.SocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model exported by PET Runtime loads through DJL's ONNX Runtime engine with {@link Gpt2DjlTranslator} and gives
 * the next-token logits ONNX Runtime gives directly (same runtime, same graph: tolerance 1e-5 allows for different
 * session optimisation settings), offline: no URL is opened and DJL's cache directory holds only natives extracted from jars on the class path.
 */
class Gpt2DjlTranslatorTest {
    /**
     * Runs {@link #main} in a fresh JVM: DJL's engine must create the process's ONNX Runtime environment itself,
     * which other tests in this JVM have already done.
     */
    @Test
    void djlLoadsOurExportAndMatchesOnnxRuntimeOffline(@TempDir Path dir) throws Exception {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(javaBin, "-cp", System.getProperty("java.class.path"),
                Gpt2DjlTranslatorTest.class.getName(), dir.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the DJL check did not finish");
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("DJL check passed"), out);
    }

    @Test
    void engineStartFailsClearlyAfterAnotherOrtEnvironment() {
        OrtEnvironment.getEnvironment();
        PetException e = assertThrows(PetException.class,
                Gpt2DjlTranslator::initialiseEngine);
        assertTrue(e.getMessage().contains("must be initialised before any other ONNX Runtime environment"),
                e.getMessage());
    }

    public static void main(String[] args) throws Exception {
        check(Path.of(args[0]));
        System.out.println("DJL check passed");
    }

    private static void check(Path dir) throws Exception {
        Path cache = Files.createDirectories(dir.resolve("djl-cache"));
        String oldCache = System.setProperty("DJL_CACHE_DIR", cache.toString());
        String oldEngineCache = System.setProperty("ENGINE_CACHE_DIR", cache.toString());
        Gpt2DjlTranslator.initialiseEngine();
        List<URI> opened = Collections.synchronizedList(new ArrayList<>());
        ProxySelector previous = ProxySelector.getDefault();
        ProxySelector.setDefault(new ProxySelector() {
            @Override
            public List<Proxy> select(URI uri) {
                opened.add(uri);
                return List.of(Proxy.NO_PROXY);
            }

            @Override
            public void connectFailed(URI uri, SocketAddress sa, IOException ioe) {
            }
        });
        try {
            Gpt2Weights w = TorchStyleGpt2.weights(Gpt2Config.of(512, 32, 64, 2, 4), 11);
            Model model = Gpt2Graph.build(w, CausalLmGraphOptions.training()).model();
            Path file = dir.resolve("gpt2-tiny.onnx");
            Files.write(file, OnnxSerializer.toBytes(model));
            long[] prompt = {464, 207, 86, 218, 180};

            Criteria<long[], float[]> criteria = Criteria.builder().setTypes(long[].class, float[].class)
                    .optModelPath(file).optEngine("OnnxRuntime").optTranslator(new Gpt2DjlTranslator()).build();
            try (ZooModel<long[], float[]> zoo = criteria.loadModel();
                    Predictor<long[], float[]> p = zoo.newPredictor()) {
                float[] djl = p.predict(prompt);
                float[] all = Ort.logits(model, new long[][] {prompt}, new long[][] {{1, 1, 1, 1, 1}});
                float[] direct = Arrays.copyOfRange(all, 4 * 512, 5 * 512);
                assertEquals(512, djl.length);
                double worst = 0;
                for (int v = 0; v < 512; v++) {
                    worst = Math.max(worst, Math.abs(djl[v] - direct[v]));
                }
                assertTrue(worst <= 1e-5, "DJL vs ONNX Runtime next-token logits differ by " + worst);

                long[] generated = Gpt2DjlTranslator.generateGreedy(p, prompt, 4, -1);
                assertArrayEquals(greedyDirect(model, prompt, 4), generated);
            }
            assertEquals(List.of(), opened, "DJL must not open any URL");
            // DJL initialises every engine on the class path; the tokenizers engine extracts the native library
            // bundled in its jar into the cache. Anything else there would have come from elsewhere.
            try (Stream<Path> files = Files.walk(cache)) {
                for (Path f : files.filter(Files::isRegularFile).toList()) {
                    String dirName = f.getParent().getFileName().toString();
                    String platform = dirName.substring(dirName.indexOf("cpu-") + 4);
                    String resource = "native/lib/" + platform + "/cpu/" + f.getFileName();
                    try (InputStream in = Gpt2DjlTranslatorTest.class.getClassLoader().getResourceAsStream(resource)) {
                        assertTrue(in != null, f + " is in DJL's cache but not bundled as " + resource);
                        assertArrayEquals(in.readAllBytes(), Files.readAllBytes(f), f + " differs from " + resource);
                    }
                }
            }
        } finally {
            ProxySelector.setDefault(previous);
            restore("DJL_CACHE_DIR", oldCache);
            restore("ENGINE_CACHE_DIR", oldEngineCache);
        }
    }

    private static void restore(String key, String value) {
        if (value == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, value);
        }
    }

    private static long[] greedyDirect(Model model, long[] prompt, int n) {
        long[] seq = prompt.clone();
        for (int step = 0; step < n; step++) {
            long[] ones = new long[seq.length];
            Arrays.fill(ones, 1);
            float[] all = Ort.logits(model, new long[][] {seq}, new long[][] {ones});
            int vocab = all.length / seq.length;
            int best = 0;
            for (int v = 1; v < vocab; v++) {
                if (all[(seq.length - 1) * vocab + v] > all[(seq.length - 1) * vocab + best]) {
                    best = v;
                }
            }
            seq = Arrays.copyOf(seq, seq.length + 1);
            seq[seq.length - 1] = best;
        }
        return Arrays.copyOfRange(seq, prompt.length, seq.length);
    }
}
