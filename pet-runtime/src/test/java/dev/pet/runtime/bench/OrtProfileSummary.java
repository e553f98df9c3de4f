package dev.pet.runtime.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Kernel time per run from one ONNX Runtime profile (the JSON that {@code SessionOptions.enableProfiling} writes,
 * e.g. through {@code EngineOptions.withProfileDirectory}): totals by op type, by phase (forward, backward = nodes
 * under the autodiff's {@code grad/} scope, optimizer = {@code optim/}) and by module (the node's scope with layer
 * numbers folded, so 30 layers' RMSNorms are one row). Times are the sum of each node's {@code *_kernel_time}
 * events divided by the number of {@code model_run} events, leaving out the first run when there are more: it
 * grows the allocator's arena, and its first writes to fresh pages made forward elementwise kernels 40x slower
 * there than in later runs (SmolLM2-135M, 6.6 ms against 0.16 ms), which would misplace whole shares.
 *
 * @param runs     model runs counted (all but the first)
 * @param byOp     op type -> time and distinct nodes
 * @param byPhase  forward / backward / optimizer -> time and distinct nodes
 * @param byModule scope with layers folded -> time and distinct nodes
 */
public record OrtProfileSummary(int runs, Map<String, Entry> byOp, Map<String, Entry> byPhase,
        Map<String, Entry> byModule) {

    /** Milliseconds per run and distinct nodes of one group. */
    public record Entry(double msPerRun, int nodes) {
    }

    /** Reads a profile file. */
    public static OrtProfileSummary read(Path json) throws IOException {
        JsonNode events = new ObjectMapper().readTree(json.toFile());
        if (events == null || !events.isArray()) {
            throw new IOException("not an ONNX Runtime profile (a JSON array of events): " + json);
        }
        List<double[]> runSpans = new ArrayList<>();
        for (JsonNode e : events) {
            if ("Session".equals(e.path("cat").asText()) && "model_run".equals(e.path("name").asText())) {
                double ts = e.path("ts").asDouble();
                runSpans.add(new double[] {ts, ts + e.path("dur").asDouble()});
            }
        }
        if (runSpans.isEmpty()) {
            throw new IOException("the profile has no model_run events: " + json);
        }
        runSpans.sort(Comparator.comparingDouble(r -> r[0]));
        List<double[]> counted = runSpans.size() > 1 ? runSpans.subList(1, runSpans.size()) : runSpans;
        int runs = counted.size();
        Map<String, double[]> op = new TreeMap<>();
        Map<String, double[]> phase = new TreeMap<>();
        Map<String, double[]> module = new TreeMap<>();
        Map<String, Set<String>> opNodes = new TreeMap<>();
        Map<String, Set<String>> phaseNodes = new TreeMap<>();
        Map<String, Set<String>> moduleNodes = new TreeMap<>();
        for (JsonNode e : events) {
            String cat = e.path("cat").asText();
            String name = e.path("name").asText();
            JsonNode args = e.get("args");
            if (!"Node".equals(cat) || !name.endsWith("_kernel_time") || args == null || !args.has("op_name")
                    || !within(counted, e.path("ts").asDouble())) {
                continue;
            }
            String node = name.substring(0, name.length() - "_kernel_time".length());
            double ms = e.path("dur").asDouble() / 1e3;
            add(op, opNodes, args.get("op_name").asText(), node, ms);
            add(phase, phaseNodes, phase(node), node, ms);
            add(module, moduleNodes, module(node), node, ms);
        }
        return new OrtProfileSummary(runs, entries(op, opNodes, runs), entries(phase, phaseNodes, runs),
                entries(module, moduleNodes, runs));
    }

    private static boolean within(List<double[]> spans, double ts) {
        for (double[] s : spans) {
            if (ts >= s[0] && ts <= s[1]) {
                return true;
            }
        }
        return false;
    }

    /** Total kernel milliseconds per run. */
    public double totalMsPerRun() {
        return byOp.values().stream().mapToDouble(Entry::msPerRun).sum();
    }

    /** A text table: the {@code top} largest groups of each kind with their share of the kernel time. */
    public String format(int top) {
        StringBuilder s = new StringBuilder(String.format("  kernel time per run %.1f ms over %d runs%n",
                totalMsPerRun(), runs));
        table(s, "op type", byOp, top);
        table(s, "phase", byPhase, top);
        table(s, "module (layers folded)", byModule, top);
        return s.toString();
    }

    private void table(StringBuilder s, String title, Map<String, Entry> m, int top) {
        s.append(String.format("  %-58s %10s %6s %6s%n", "by " + title, "ms/run", "share", "nodes"));
        m.entrySet().stream().sorted(Comparator.comparingDouble((Map.Entry<String, Entry> x) -> -x.getValue()
                .msPerRun())).limit(top).forEach(x -> s.append(String.format("    %-56s %10.1f %5.1f%% %6d%n",
                        x.getKey(), x.getValue().msPerRun(), 100 * x.getValue().msPerRun() / totalMsPerRun(),
                        x.getValue().nodes())));
    }

    static String phase(String node) {
        return node.startsWith("grad/") || node.startsWith("grad_") ? "backward"
                : node.startsWith("optim/") ? "optimizer" : "forward";
    }

    /** {@code grad//model/layers.7/mlp/act_fn/Mul_1} -> {@code /model/layers.N/mlp/act_fn}. */
    static String module(String node) {
        String n = node.startsWith("grad/") ? node.substring(5) : node;
        n = n.replaceAll("layers[./]\\d+", "layers.N");
        int slash = n.lastIndexOf('/');
        return slash > 0 ? n.substring(0, slash) : n;
    }

    private static void add(Map<String, double[]> ms, Map<String, Set<String>> nodes, String key, String node,
            double t) {
        ms.computeIfAbsent(key, k -> new double[1])[0] += t;
        nodes.computeIfAbsent(key, k -> new HashSet<>()).add(node);
    }

    private static Map<String, Entry> entries(Map<String, double[]> ms, Map<String, Set<String>> nodes, int runs) {
        Map<String, Entry> out = new LinkedHashMap<>();
        List<String> keys = new ArrayList<>(ms.keySet());
        for (String k : keys) {
            out.put(k, new Entry(ms.get(k)[0] / runs, nodes.get(k).size()));
        }
        return out;
    }
}
