package dev.pet.distribution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's quickstart, run exactly as written ({@code bin/pet finetune conf/quickstart.yaml}, then
 * {@code bin/pet generate conf/quickstart.yaml --prompt "The keeper"}) in a copy of the distribution: the loss falls
 * by at least half and the generated text continues the bundled text (shares 4-word phrases with it).
 */
class QuickstartIT {
    @TempDir
    Path tmp;

    @Test
    void theQuickstartVisiblyLearnsTheBundledText() throws Exception {
        Path home = DistributionIT.home == null ? Path.of(System.getProperty("pet.home")) : DistributionIT.home;
        Path copy = tmp.resolve("pet");
        Files.createDirectories(copy.resolve("bin"));
        Files.createDirectories(copy.resolve("conf"));
        Files.copy(home.resolve("bin/pet"), copy.resolve("bin/pet"));
        for (String linked : List.of("lib", "plugins", "data", "models")) {
            Files.createSymbolicLink(copy.resolve(linked), home.resolve(linked).toAbsolutePath());
        }
        for (String conf : List.of("quickstart.yaml", "logging.properties")) {
            Files.copy(home.resolve("conf").resolve(conf), copy.resolve("conf").resolve(conf));
        }

        long t0 = System.nanoTime();
        DistributionIT.Run train = DistributionIT.pet(copy, copy, "finetune", "conf/quickstart.yaml");
        long t1 = System.nanoTime();
        assertEquals(0, train.exit(), train.out());
        DistributionIT.Run generate = DistributionIT.pet(copy, copy, "generate", "conf/quickstart.yaml",
                "--prompt", "The keeper");
        long t2 = System.nanoTime();
        assertEquals(0, generate.exit(), generate.out());

        List<Double> losses = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(copy.resolve("output/quickstart/metrics.jsonl"))) {
            JsonNode n = json.readTree(line);
            if (n.path("loss").isNumber()) {
                losses.add(n.get("loss").asDouble());
            }
        }
        double first = losses.get(0);
        double last = losses.get(losses.size() - 1);
        String text = generate.out().strip();
        Set<String> bundled = fourGrams(Files.readString(home.resolve("data/lighthouse.txt")));
        Set<String> generated = fourGrams(text);
        generated.retainAll(bundled);
        System.out.printf(Locale.ROOT, "quickstart: finetune %.1f s, generate %.1f s; loss %.3f -> %.3f (%.0f%%); "
                + "%d shared 4-word phrases: %s%n", (t1 - t0) / 1e9, (t2 - t1) / 1e9, first, last,
                100 * (last - first) / first, generated.size(), text);
        assertTrue(last <= 0.5 * first, "loss falls by at least half: " + first + " -> " + last);
        assertTrue(generated.size() >= 3, "continues the bundled text: " + generated + " in: " + text);
    }

    /** Lower-cased 4-word phrases of a text. */
    static Set<String> fourGrams(String text) {
        List<String> words = new ArrayList<>();
        Matcher m = Pattern.compile("[a-z']+").matcher(text.toLowerCase(Locale.ROOT));
        while (m.find()) {
            words.add(m.group());
        }
        Set<String> grams = new LinkedHashSet<>();
        for (int i = 0; i + 4 <= words.size(); i++) {
            grams.add(String.join(" ", words.subList(i, i + 4)));
        }
        return grams;
    }
}
