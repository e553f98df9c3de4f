package dev.pet.djl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import dev.pet.runtime.ExportRequest;
import dev.pet.runtime.GenerateRequest;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.Trainer;
import dev.pet.runtime.cli.PetCli;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.generate.TextSink;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginRegistry;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.SocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Train, export, predict through DJL: a model exported by {@code pet export} loads with
 * {@code Criteria.builder().setTypes(String.class, String.class).optModelPath(dir)} on DJL's ONNX Runtime engine and
 * generates the text {@code pet generate} does (greedy and seeded sampling), offline: no URL is opened and DJL's
 * cache holds only natives extracted from jars on the class path.
 */
class PetDjlTest {
    /** Runs {@link #main} in a fresh JVM: DJL's engine must create the process's ONNX Runtime environment itself. */
    @Test
    void djlGeneratesWhatPetGenerateDoesOffline(@TempDir Path dir) throws Exception {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(javaBin, "-Xmx2g", "-XX:ErrorFile=" + dir.resolve("hs_err.log"), "-cp", System.getProperty("java.class.path"),
                PetDjlTest.class.getName(), dir.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        Files.writeString(Path.of("target", "djl-check.log"), out);
        assertTrue(p.waitFor(240, TimeUnit.SECONDS), "the DJL check did not finish");
        String crash = Files.isRegularFile(dir.resolve("hs_err.log")) ? Files.readString(dir.resolve("hs_err.log"))
                .lines().limit(40).reduce("", (a, b) -> a + "\n" + b) : "";
        assertEquals(0, p.exitValue(), out + crash);
        assertTrue(out.contains("DJL check passed"), out);
    }

    public static void main(String[] args) throws Exception {
        check(Path.of(args[0]));
        System.out.println("DJL check passed");
        System.exit(0);
    }

    private static void check(Path dir) throws Exception {
        Path cache = Files.createDirectories(dir.resolve("djl-cache"));
        System.setProperty("DJL_CACHE_DIR", cache.toString());
        System.setProperty("ENGINE_CACHE_DIR", cache.toString());
        // user.home stays: the token cache of Trainer lives under it.
        System.out.println("starting DJL's engine");
        PetTranslatorFactory.initialiseEngine();
        System.out.println("DJL's engine started");
        List<URI> opened = Collections.synchronizedList(new ArrayList<>());
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

        Path corpus = dir.resolve("c.txt");
        Files.writeString(corpus, "Sound the horn in fog and light the lamp at dusk.\n".repeat(10));
        Trainer t = Trainer.builder().model("gpt2-tiny").petMethod("lora").petConfig(Map.of("r", 4))
                .trainDataset(corpus).seqLength(16).batchSize(2).maxSteps(4).learningRate(1e-2)
                .outputDir(dir.resolve("run")).seed(3).build();
        t.finetune();
        System.out.println("trained");
        RunConfig config = t.config();
        RunEnvironment env = new RunEnvironment(PluginRegistry.discover(dev.pet.runtime.plugin.PluginKind.ALL,
                PetDjlTest.class.getClassLoader(), null), new TrainingListener() { }, TokenCache.defaultCache(),
                new PrintStream(System.out));
        DefaultPetEngine engine = new DefaultPetEngine();
        Path export = dir.resolve("export");
        engine.export(new ExportRequest(config, null, ExportRequest.Format.MERGED_ONNX, export, false),
                env);
        assertTrue(Files.isRegularFile(export.resolve(PetModelInfo.FILE)));
        assertTrue(Files.isRegularFile(export.resolve("serving.properties")));

        String prompt = "Sound the";
        for (double temperature : new double[] {0, 0.9}) {
            String expected = engine.generate(new GenerateRequest(config, null, List.of(prompt), 12, temperature, 40,
                    1, 1, 7, List.of()), env, TextSink.none()).get(0).text();
            Criteria<String, String> criteria = Criteria.builder().setTypes(String.class, String.class)
                    .optModelPath(export).optEngine("OnnxRuntime").optTranslatorFactory(new PetTranslatorFactory())
                    .optArgument("max_new_tokens", 12)
                    .optArgument("temperature", temperature).optArgument("top_k", 40).optArgument("seed", 7).build();
            try (ZooModel<String, String> model = criteria.loadModel();
                    Predictor<String, String> predictor = model.newPredictor()) {
                assertEquals(expected, predictor.predict(prompt), "temperature " + temperature);
            }
        }
        String base = engine.generate(new GenerateRequest(dev.pet.runtime.config.RunConfigLoader.parse("{seed: 3}",
                "base", List.of("model.model_config.checkpoint_name_or_path=gpt2-tiny")), null, List.of(prompt), 12, 0,
                0, 1, 1, 7, List.of()), env, TextSink.none()).get(0).text();
        assertNotEquals(base, engine.generate(new GenerateRequest(config, null, List.of(prompt), 12, 0, 0, 1, 1, 7,
                List.of()), env, TextSink.none()).get(0).text(), "the exported adapter changed the model");

        assertEquals(List.of(), opened, "DJL must not open any URL");
        // DJL initialises every engine on the class path; the tokenizers engine extracts the native library bundled
        // in its jar into the cache. Anything else there would have come from elsewhere.
        try (Stream<Path> files = Files.walk(cache)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                String dirName = f.getParent().getFileName().toString();
                String platform = dirName.substring(dirName.indexOf("cpu-") + 4);
                String resource = "native/lib/" + platform + "/cpu/" + f.getFileName();
                try (InputStream in = PetDjlTest.class.getClassLoader().getResourceAsStream(resource)) {
                    assertTrue(in != null, f + " is in DJL's cache but not bundled as " + resource);
                    assertArrayEquals(in.readAllBytes(), Files.readAllBytes(f), f + " differs from " + resource);
                }
            }
        }
    }
}
