package dev.pet.gpt2.onnx;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pet.api.LayerAnatomy;
import dev.pet.api.LinearModule;
import dev.pet.api.ModelAnatomy;
import dev.pet.api.PetException;
import dev.pet.api.PretrainedModel;
import dev.pet.api.TextTokenizer;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Graph;
import dev.pet.gpt2.Gpt2Tokenizers;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.build.GraphBuilder;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.io.OnnxSerializer;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Imports a GPT-2 forward graph exported by {@code torch.onnx.export} or Hugging Face Optimum (or by PET Runtime)
 * and recovers its {@link ModelAnatomy} from initializer and node names, so that PET methods can attach to it.
 *
 * <p>Linear modules are {@code Gemm} nodes (either weight layout, {@code transB}) or {@code MatMul} nodes with a
 * constant weight (an initializer, or a {@code Transpose} of one) followed by an optional bias {@code Add}. Each is
 * attributed to a module path from its weight's state-dict name ({@code transformer.h.0.attn.c_attn.weight}) or, for
 * anonymous weights such as {@code onnx::MatMul_123}, from the consuming node's scope
 * ({@code /transformer/h.0/attn/c_attn/MatMul} is {@code transformer.h.0.attn.c_attn}). The attention core of each
 * block is found structurally, walking back from the attention output projection to the context {@code MatMul},
 * its {@code Softmax} and the score {@code MatMul}; layer norms, activations and shape-computation subgraphs may be
 * fused or decomposed, they are not needed.
 *
 * <p>So that every anatomy value has consumers only inside its block (what {@link LayerAnatomy} promises), the
 * importer inserts {@code Identity} nodes for the keys and values entering attention, the attention bias and the
 * attention and MLP outputs, and folds a boolean causal {@code Where} mask into an additive bias
 * ({@code scores + where(causal, 0, min)}, equal after softmax). The input model is not changed: the import works
 * on a copy. Whatever is not recognised is left null in the anatomy and listed in the {@link Gpt2OnnxReport}; when
 * nothing usable is found (no block linear, no token-id input or no logits) a {@link Gpt2OnnxImportException}
 * carries the report.
 */
public final class Gpt2OnnxImporter {
    /** Model files above the protobuf limit need external data, which this importer does not read. */
    public static final long MAX_FILE_BYTES = OnnxSerializer.PROTOBUF_LIMIT;
    /** The linear modules of a GPT-2 block, in graph order, relative to {@code transformer.h.N}. */
    public static final List<String> LAYER_LINEARS = List.of("attn.c_attn", "attn.c_proj", "mlp.c_fc",
            "mlp.c_proj");

    private static final Pattern LAYER_PATH = Pattern.compile(
            "transformer\\.h\\.(\\d+)\\.(attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj)");
    private static final Pattern LAYER_SCOPE = Pattern.compile("^/(?:transformer/)?h\\.(\\d+)/.*");
    private static final int MAX_WALK = 12;
    private static final ObjectMapper JSON = new ObjectMapper();

    private Gpt2OnnxImporter() {
    }

    /**
     * The imported model and what was recognised.
     *
     * @param model  the model, its anatomy and tokenizer
     * @param report recognised and unrecognised parts
     */
    public record Result(PretrainedModel model, Gpt2OnnxReport report) {
        public Result {
            Objects.requireNonNull(model, "model");
            Objects.requireNonNull(report, "report");
        }
    }

    /** Imports a {@code .onnx} file; the tokenizer is the one of its directory, else {@code r50k_base}. */
    public static PretrainedModel load(Path onnxFile) {
        return importFile(onnxFile).model();
    }

    /** Imports an in-memory model (not modified) with the {@code r50k_base} tokenizer. */
    public static PretrainedModel load(Model model) {
        return importModel(model, "<in-memory model>", Gpt2Tokenizers.r50k()).model();
    }

    /** Like {@link #load(Path)}, with the report. */
    public static Result importFile(Path onnxFile) {
        Objects.requireNonNull(onnxFile, "onnxFile");
        byte[] bytes;
        try {
            long size = Files.size(onnxFile);
            if (size > MAX_FILE_BYTES) {
                throw new PetException(onnxFile + ": " + size + " bytes exceeds the " + MAX_FILE_BYTES
                        + "-byte protobuf limit; models this large need external data, which the importer does "
                        + "not read");
            }
            bytes = Files.readAllBytes(onnxFile);
        } catch (IOException e) {
            throw new PetException("cannot read " + onnxFile + ": " + e.getMessage(), e);
        }
        Model model;
        try {
            model = OnnxSerializer.fromBytes(bytes);
        } catch (PetException e) {
            throw e;
        } catch (OnnxException e) {
            throw new PetException(onnxFile + ": " + e.getMessage(), e);
        }
        Path dir = onnxFile.toAbsolutePath().getParent();
        TextTokenizer tokenizer = dir == null ? Gpt2Tokenizers.r50k() : Gpt2Tokenizers.forDirectory(dir);
        return importModel(model, onnxFile.toString(), tokenizer);
    }

    /** Imports a copy of {@code model}; {@code source} names it in messages. */
    public static Result importModel(Model model, String source, TextTokenizer tokenizer) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(tokenizer, "tokenizer");
        long opset = model.opset();
        if (opset < 13 || opset > 21) {
            throw new PetException(source + ": ONNX opset " + opset + " is not supported; expected 13-21 "
                    + "(torch.onnx.export with opset_version 13-17, or Optimum)");
        }
        return new Importer(model.copy(), source, tokenizer).run();
    }

    /** The module path a node name's scope stands for ({@code /transformer/h.0/attn/c_attn/Gemm}), or null. */
    static String pathFromNodeName(String nodeName) {
        if (nodeName == null || !nodeName.startsWith("/")) {
            return null;
        }
        String[] parts = nodeName.substring(1).split("/");
        if (parts.length < 2) {
            return null;
        }
        return canonical(String.join(".", Arrays.copyOf(parts, parts.length - 1)));
    }

    /** The module path of a state-dict weight name ({@code transformer.h.0.attn.c_attn.weight}), or null. */
    static String pathFromWeightName(String name) {
        if (name == null || !name.endsWith(".weight")) {
            return null;
        }
        return canonical(name.substring(0, name.length() - ".weight".length()));
    }

    private static String canonical(String path) {
        String p = path.startsWith("h.") ? "transformer." + path : path;
        return LAYER_PATH.matcher(p).matches() || p.equals("lm_head") ? p : null;
    }

    /** A recognised linear projection. */
    private record Lin(String path, int layer, String part, Node node, Value weight, Value bias, Value input,
            Value output, long in, long out, boolean inOut) {
        String describe() {
            return node.describe() + ", weight '" + weight.name() + "' " + (inOut ? "[in, out]" : "[out, in]")
                    + " " + in + "->" + out + (bias == null ? ", no bias" : ", bias '" + bias.name() + "'");
        }
    }

    /** One step between the attention scores and Softmax: an additive term or a Where mask. */
    private record MaskOp(Node node, int scoreInput) {
    }

    private static final class Importer {
        private final Model model;
        private final Graph g;
        private final String source;
        private final TextTokenizer tokenizer;
        private final GraphBuilder b;
        private final Map<String, String> recognised = new LinkedHashMap<>();
        private final Map<String, String> unrecognised = new LinkedHashMap<>();
        private final List<String> notes = new ArrayList<>();
        private final Map<String, Lin> linears = new LinkedHashMap<>();
        private final TreeMap<Integer, Map<String, String>> layerFound = new TreeMap<>();
        private final TreeMap<Integer, Map<String, String>> layerMissing = new TreeMap<>();
        private Long headsFromShapes;
        private Long headDimFromScale;

        Importer(Model model, String source, TextTokenizer tokenizer) {
            this.model = model;
            this.g = model.graph();
            this.source = source;
            this.tokenizer = tokenizer;
            this.b = new GraphBuilder(g, (int) model.opset());
        }

        Result run() {
            findLinears();
            int layerCount = layerCount();
            List<LayerAnatomy> layers = new ArrayList<>();
            for (int i = 0; i < layerCount; i++) {
                layers.add(layer(i));
            }
            Value ids = inputIds();
            Value mask = g.inputs().stream().filter(v -> v.name().equals(Gpt2Graph.ATTENTION_MASK)).findFirst()
                    .orElse(null);
            if (mask != null) {
                recognised.put("attention_mask", "graph input '" + mask.name() + "'");
            } else {
                unrecognised.put("attention_mask", "no graph input named 'attention_mask' (padding cannot be "
                        + "masked)");
            }
            Tensor wte = wte(ids);
            Tensor wpe = wpe();
            Value positionIds = positionIds();
            Value logits = logits(wte);
            lmHead();
            long hidden = wte != null ? wte.dim(1) : linearIn("attn.c_attn");
            long heads = numHeads(hidden);
            List<LinearModule> mods = new ArrayList<>();
            linears.values().stream().filter(l -> l.layer() >= 0)
                    .sorted(Comparator.comparingInt(Lin::layer).thenComparingInt(l -> LAYER_LINEARS.indexOf(l.part())))
                    .forEach(l -> mods.add(new LinearModule(l.path(), l.weight().name(),
                            l.bias() == null ? null : l.bias().name(), l.input().name(), l.output().name(), l.in(),
                            l.out(), l.layer(), l.inOut())));

            Gpt2OnnxReport report = report();
            if (mods.isEmpty() || ids == null || logits == null) {
                throw new Gpt2OnnxImportException(source + ": nothing usable as GPT-2: "
                        + (mods.isEmpty() ? "no linear module of a transformer block was recognised; " : "")
                        + (ids == null ? "no token-id input; " : "") + (logits == null ? "no logits output; " : "")
                        + "names must follow the Hugging Face module paths (initializer "
                        + "'transformer.h.0.attn.c_attn.weight' or node '/transformer/h.0/attn/c_attn/MatMul')",
                        report);
            }
            g.removeUnused();
            g.sortTopologically();
            ModelAnatomy anatomy = new ModelAnatomy(layers, mods, hidden, heads, heads > 0 ? hidden / heads : -1,
                    ids.name(), mask == null ? null : mask.name(), positionIds == null ? null : positionIds.name(),
                    logits.name());
            Map<String, Object> config = new LinkedHashMap<>();
            config.put("n_layer", layerCount);
            config.put("n_embd", hidden);
            config.put("n_head", heads);
            long vocab = wte != null ? wte.dim(0) : -1;
            config.put("vocab_size", vocab);
            long positions = wpe != null ? wpe.dim(0) : -1;
            config.put("n_positions", positions);
            long inner = linearOut("mlp.c_fc");
            if (inner > 0) {
                config.put("n_inner", inner);
            }
            config.put("source_format", "onnx");
            PretrainedModel pm = new PretrainedModel("gpt2", source, model, anatomy, tokenizer, config, vocab,
                    positions);
            return new Result(pm, report);
        }

        private Gpt2OnnxReport report() {
            List<Gpt2OnnxReport.LayerReport> lr = new ArrayList<>();
            for (int i = 0; i < layerCount(); i++) {
                lr.add(new Gpt2OnnxReport.LayerReport(i, layerFound.getOrDefault(i, Map.of()),
                        layerMissing.getOrDefault(i, Map.of())));
            }
            return new Gpt2OnnxReport(source, recognised, unrecognised, lr, notes);
        }

        // ---- linear modules ----------------------------------------------------------------------------------

        private void findLinears() {
            for (Node n : List.copyOf(g.nodes())) {
                if (!n.domain().isEmpty()) {
                    continue;
                }
                Lin l = switch (n.opType()) {
                    case "Gemm" -> gemm(n);
                    case "MatMul" -> matMul(n);
                    default -> null;
                };
                if (l == null) {
                    continue;
                }
                if (l.path() == null) {
                    notes.add("linear not attributed to any module (anonymous weight and node name): "
                            + l.describe());
                    continue;
                }
                Lin prev = linears.putIfAbsent(l.path(), l);
                if (prev != null) {
                    notes.add(l.path() + ": a second candidate " + l.describe() + " ignored; kept "
                            + prev.describe());
                }
            }
        }

        private boolean isInitializer(Value v) {
            return v != null && g.initializer(v.name()) != null && !v.isGraphInput();
        }

        private Lin gemm(Node n) {
            Value a = n.input(0);
            Value w = n.input(1);
            Value c = n.input(2);
            if (!isInitializer(w) || isInitializer(a)) {
                return null;
            }
            long[] s = g.initializer(w.name()).shape();
            if (s.length != 2) {
                return null;
            }
            if (n.intAttr("transA", 0) != 0) {
                notes.add(n.describe() + " has transA=1; not treated as a linear module");
                return null;
            }
            boolean inOut = n.intAttr("transB", 0) == 0;
            long in = inOut ? s[0] : s[1];
            long out = inOut ? s[1] : s[0];
            Value bias = isInitializer(c) && g.initializer(c.name()).elementCount() == out ? c : null;
            return lin(n, null, w, bias, a, n.output(0), in, out, inOut);
        }

        private Lin matMul(Node n) {
            Value a = n.input(0);
            Value w = n.input(1);
            boolean inOut = true;
            if (isInitializer(a) || w == null) {
                return null;
            }
            if (!isInitializer(w)) {
                Node p = w.producer();
                if (p != null && p.opType().equals("Transpose") && isInitializer(p.input(0))
                        && Arrays.equals(p.intsAttr("perm", new long[] {1, 0}), new long[] {1, 0})) {
                    w = p.input(0);
                    inOut = false;
                } else {
                    return null;
                }
            }
            long[] s = g.initializer(w.name()).shape();
            if (s.length != 2) {
                return null;
            }
            long in = inOut ? s[0] : s[1];
            long out = inOut ? s[1] : s[0];
            Value output = n.output(0);
            Value bias = null;
            Node biasAdd = null;
            if (output.uses().size() == 1 && !output.isGraphOutput()) {
                Node u = output.uses().get(0);
                if (u.opType().equals("Add") && u.domain().isEmpty()) {
                    Value other = u.input(0) == output ? u.input(1) : u.input(0);
                    if (isInitializer(other) && g.initializer(other.name()).rank() == 1
                            && g.initializer(other.name()).dim(0) == out) {
                        bias = other;
                        biasAdd = u;
                        output = u.output(0);
                    }
                }
            }
            return lin(n, biasAdd, w, bias, a, output, in, out, inOut);
        }

        private Lin lin(Node n, Node biasAdd, Value w, Value bias, Value input, Value output, long in, long out,
                boolean inOut) {
            String path = pathFromWeightName(w.name());
            if (path == null) {
                path = pathFromNodeName(n.name());
            }
            if (path == null && biasAdd != null) {
                path = pathFromNodeName(biasAdd.name());
            }
            int layer = -1;
            String part = null;
            if (path != null) {
                Matcher m = LAYER_PATH.matcher(path);
                if (m.matches()) {
                    layer = Integer.parseInt(m.group(1));
                    part = m.group(2);
                }
            }
            return new Lin(path, layer, part, n, w, bias, input, output, in, out, inOut);
        }

        private Lin linear(int layer, String part) {
            return linears.get("transformer.h." + layer + "." + part);
        }

        private long linearIn(String part) {
            Lin l = linear(0, part);
            return l == null ? -1 : l.in();
        }

        private long linearOut(String part) {
            Lin l = linear(0, part);
            return l == null ? -1 : l.out();
        }

        private int layerCount() {
            int max = -1;
            for (Lin l : linears.values()) {
                max = Math.max(max, l.layer());
            }
            for (Node n : g.nodes()) {
                Matcher m = LAYER_SCOPE.matcher(n.name());
                if (m.matches()) {
                    max = Math.max(max, Integer.parseInt(m.group(1)));
                }
            }
            return max + 1;
        }

        // ---- one block -----------------------------------------------------------------------------------

        private void found(int layer, String part, String how) {
            layerFound.computeIfAbsent(layer, k -> new LinkedHashMap<>()).put(part, how);
        }

        private void missing(int layer, String part, String why) {
            layerMissing.computeIfAbsent(layer, k -> new LinkedHashMap<>()).put(part, why);
        }

        private LayerAnatomy layer(int i) {
            String scope = "/transformer/h." + i;
            for (String part : LAYER_LINEARS) {
                Lin l = linear(i, part);
                if (l != null) {
                    found(i, part, l.describe());
                } else {
                    missing(i, part, "no Gemm/MatMul with a constant 2-D weight named 'transformer.h." + i + "."
                            + part + ".weight' or under node scope '" + scope + "/" + part.replace('.', '/') + "/'");
                }
            }
            for (String ln : List.of("ln_1", "ln_2")) {
                String prefix = scope + "/" + ln + "/";
                String bare = "/h." + i + "/" + ln + "/";
                List<String> ops = g.nodes().stream()
                        .filter(n -> n.name().startsWith(prefix) || n.name().startsWith(bare))
                        .map(Node::opType).distinct().toList();
                if (ops.isEmpty()) {
                    missing(i, ln, "no node under scope '" + prefix + "'");
                } else {
                    found(i, ln, ops.contains("LayerNormalization") ? "LayerNormalization" : "decomposed " + ops);
                }
            }

            String[] attn = attentionCore(i, scope);
            String[] resAttn = residual(i, scope, "attn.c_proj", "/attn/output", "attention_output",
                    "residual_after_attention");
            String[] resMlp = residual(i, scope, "mlp.c_proj", "/mlp/output", "mlp_output", "residual_after_mlp");
            return new LayerAnatomy(i, attn[0], attn[1], attn[2], resAttn[0], resMlp[0], resAttn[1], resMlp[1]);
        }

        private Value identity(Value v, String scope, String name) {
            String old = b.setScope(scope);
            Value id = b.identity(v);
            b.setScope(old);
            id.rename(g.uniqueName(name));
            return id;
        }

        /** Output of a projection before its residual Add, and that Add's output. */
        private String[] residual(int i, String scope, String part, String suffix, String outName, String resName) {
            Lin l = linear(i, part);
            if (l == null) {
                missing(i, outName, "needs " + part);
                missing(i, resName, "needs " + part);
                return new String[2];
            }
            Value cur = l.output();
            for (int step = 0; step < MAX_WALK; step++) {
                if (cur.uses().size() != 1 || cur.isGraphOutput()) {
                    break;
                }
                Node u = cur.uses().get(0);
                if (!u.domain().isEmpty()) {
                    break;
                }
                switch (u.opType()) {
                    case "Reshape", "Identity", "Dropout", "Cast" -> {
                        if (u.input(0) != cur) {
                            return residualMissing(i, outName, resName, l, u);
                        }
                        cur = u.output(0);
                    }
                    case "Add" -> {
                        Value other = u.input(0) == cur ? u.input(1) : u.input(0);
                        if (other == cur || ShapeInference.constantValue(other) != null) {
                            return residualMissing(i, outName, resName, l, u);
                        }
                        Value id = identity(cur, scope, scope + suffix);
                        u.setInput(u.input(0) == cur ? 0 : 1, id);
                        found(i, outName, "'" + id.name() + "' (Identity of '" + cur.name() + "')");
                        found(i, resName, "'" + u.output(0).name() + "' (" + u.describe() + ")");
                        return new String[] {id.name(), u.output(0).name()};
                    }
                    default -> {
                        return residualMissing(i, outName, resName, l, u);
                    }
                }
            }
            return residualMissing(i, outName, resName, l, null);
        }

        private String[] residualMissing(int i, String outName, String resName, Lin l, Node at) {
            String why = "the output of " + l.path() + " does not reach a residual Add through single-use "
                    + "Reshape/Identity/Dropout/Cast" + (at == null ? "" : " (stopped at " + at.describe() + ")");
            missing(i, outName, why);
            missing(i, resName, why);
            return new String[2];
        }

        /** Key, value and additive bias entering block {@code i}'s attention. */
        private String[] attentionCore(int i, String scope) {
            String[] r = new String[3];
            Lin proj = linear(i, "attn.c_proj");
            if (proj == null) {
                for (String p : List.of("key", "value", "attention_bias")) {
                    missing(i, p, "needs attn.c_proj to find the attention core");
                }
                return r;
            }
            Node context = null;
            Value cur = proj.input();
            for (int step = 0; step < MAX_WALK && cur.producer() != null; step++) {
                Node p = cur.producer();
                if (p.opType().equals("MatMul") && !isConst(p.input(1)) && !isConst(p.input(0))) {
                    context = p;
                    break;
                }
                if (!List.of("Reshape", "Transpose", "Identity", "Cast").contains(p.opType())) {
                    break;
                }
                cur = p.input(0);
            }
            if (context == null) {
                for (String p : List.of("key", "value", "attention_bias")) {
                    missing(i, p, "no MatMul(probabilities, values) behind the input of attn.c_proj");
                }
                return r;
            }
            Value v = identity(context.input(1), scope + "/attn", scope + "/attn/value");
            context.setInput(1, v);
            r[1] = v.name();
            found(i, "value", "'" + v.name() + "' (Identity before " + context.describe() + ")");

            Node softmax = null;
            cur = context.input(0);
            for (int step = 0; step < MAX_WALK && cur.producer() != null; step++) {
                Node p = cur.producer();
                if (p.opType().equals("Softmax")) {
                    softmax = p;
                    break;
                }
                if (!List.of("Cast", "Dropout", "Identity").contains(p.opType())) {
                    break;
                }
                cur = p.input(0);
            }
            if (softmax == null) {
                missing(i, "key", "no Softmax feeding " + context.describe());
                missing(i, "attention_bias", "no Softmax feeding " + context.describe());
                return r;
            }
            List<MaskOp> ops = new ArrayList<>();
            Value x = softmax.input(0);
            for (int step = 0; step < MAX_WALK && x.producer() != null; step++) {
                Node p = x.producer();
                int k = -1;
                if (p.opType().equals("Add")) {
                    k = scoreInput(p, 0, 1);
                } else if (p.opType().equals("Where")) {
                    k = scoreInput(p, 1, 2);
                }
                if (k < 0) {
                    break;
                }
                ops.add(new MaskOp(p, k));
                x = p.input(k);
            }
            Node score = null;
            Value y = x;
            for (int step = 0; step < MAX_WALK && y.producer() != null; step++) {
                Node p = y.producer();
                if (p.opType().equals("MatMul") && !isConst(p.input(0)) && !isConst(p.input(1))) {
                    score = p;
                    break;
                }
                if ((p.opType().equals("Div") || p.opType().equals("Mul")) && isConst(p.input(1))) {
                    Tensor c = ShapeInference.constantValue(p.input(1));
                    if (c.elementCount() == 1 && headDimFromScale == null) {
                        double s = c.toDoubleArray()[0];
                        double hd = p.opType().equals("Div") ? s * s : 1.0 / (s * s);
                        if (Math.abs(hd - Math.rint(hd)) < 1e-3 && hd >= 1) {
                            headDimFromScale = Math.round(hd);
                        }
                    }
                    y = p.input(0);
                } else if (p.opType().equals("Mul") && isConst(p.input(0))) {
                    y = p.input(1);
                } else if (p.opType().equals("Cast")) {
                    y = p.input(0);
                } else {
                    break;
                }
            }
            if (score == null) {
                missing(i, "key", "no score MatMul(query, keyᵀ) behind " + softmax.describe());
            } else {
                r[0] = key(i, scope, score);
            }
            r[2] = bias(i, scope, softmax, ops, x);
            return r;
        }

        private String key(int i, String scope, Node score) {
            Value kt = score.input(1);
            for (int step = 0; step < MAX_WALK && kt.producer() != null; step++) {
                Node p = kt.producer();
                if (p.opType().equals("Transpose")
                        && Arrays.equals(p.intsAttr("perm", null), new long[] {0, 1, 3, 2})) {
                    Value key = p.input(0);
                    recordHeads(key);
                    Value id = identity(key, scope + "/attn", scope + "/attn/key");
                    p.setInput(0, id);
                    found(i, "key", "'" + id.name() + "' (Identity before " + p.describe() + ")");
                    return id.name();
                }
                if ((p.opType().equals("Mul") || p.opType().equals("Div")) && isConst(p.input(1))) {
                    kt = p.input(0);
                } else {
                    break;
                }
            }
            Node p = score.input(1).producer();
            missing(i, "key", "the second input of " + score.describe() + " is not a Transpose(perm=[0,1,3,2]) of "
                    + "[batch, heads, keys, headDim] keys (found " + (p == null ? "a graph input" : p.describe())
                    + "); keys stored pre-transposed cannot be extended by a prefix");
            return null;
        }

        private void recordHeads(Value key) {
            if (headsFromShapes != null) {
                return;
            }
            TensorType t = key.type();
            if (t.hasRank() && t.rank() == 4 && t.dims().get(1).isFixed()) {
                headsFromShapes = t.dims().get(1).value();
                return;
            }
            Node tr = key.producer();
            if (tr == null || !tr.opType().equals("Transpose")
                    || !Arrays.equals(tr.intsAttr("perm", null), new long[] {0, 2, 1, 3})) {
                return;
            }
            Node reshape = tr.input(0).producer();
            if (reshape == null || !reshape.opType().equals("Reshape")) {
                return;
            }
            long[] shape = ShapeInference.constantInts(reshape.input(1));
            if (shape != null && shape.length == 4 && shape[2] > 0) {
                headsFromShapes = shape[2];
                return;
            }
            Node concat = reshape.input(1).producer();
            if (concat != null && concat.opType().equals("Concat") && concat.inputCount() == 4) {
                long[] h = ShapeInference.constantInts(concat.input(2));
                if (h != null && h.length == 1 && h[0] > 0) {
                    headsFromShapes = h[0];
                }
            }
        }

        /** Which of inputs a/b of {@code p} carries the attention scores, or -1. */
        private int scoreInput(Node p, int a, int c) {
            boolean sa = isScorePath(p.input(a), 0);
            boolean sc = isScorePath(p.input(c), 0);
            return sa == sc ? -1 : sa ? a : c;
        }

        private boolean isScorePath(Value v, int depth) {
            if (v == null || depth > 8 || v.producer() == null) {
                return false;
            }
            Node p = v.producer();
            return switch (p.opType()) {
                case "MatMul" -> !isConst(p.input(0)) && !isConst(p.input(1));
                case "Div", "Mul", "Add", "Sub" -> (!isConst(p.input(0)) && isScorePath(p.input(0), depth + 1))
                        || (!isConst(p.input(1)) && isScorePath(p.input(1), depth + 1));
                case "Where" -> isScorePath(p.input(1), depth + 1) || isScorePath(p.input(2), depth + 1);
                case "Cast", "Identity" -> isScorePath(p.input(0), depth + 1);
                default -> false;
            };
        }

        private boolean isConst(Value v) {
            return ShapeInference.constantValue(v) != null;
        }

        private String bias(int i, String scope, Node softmax, List<MaskOp> ops, Value scores) {
            if (ops.isEmpty()) {
                missing(i, "attention_bias", "no Add or Where mask between the attention scores and "
                        + softmax.describe());
                return null;
            }
            if (ops.size() == 1 && ops.get(0).node().opType().equals("Add")) {
                Node add = ops.get(0).node();
                int termIndex = 1 - ops.get(0).scoreInput();
                Value id = identity(add.input(termIndex), scope + "/attn", scope + "/attn/attention_bias");
                add.setInput(termIndex, id);
                found(i, "attention_bias", "'" + id.name() + "' (Identity of the additive mask of "
                        + add.describe() + ")");
                return id.name();
            }
            String old = b.setScope(scope + "/attn/attention_bias");
            Value bias = null;
            List<String> folded = new ArrayList<>();
            for (int j = ops.size() - 1; j >= 0; j--) {
                MaskOp m = ops.get(j);
                Node p = m.node();
                folded.add(p.describe());
                if (p.opType().equals("Add")) {
                    Value term = p.input(1 - m.scoreInput());
                    bias = bias == null ? term : b.add(bias, term);
                } else {
                    Value cond = p.input(0);
                    Value fill = p.input(m.scoreInput() == 1 ? 2 : 1);
                    Value keep = bias != null ? bias : b.constant(floatType(scores, fill), 0.0);
                    bias = m.scoreInput() == 1 ? b.where(cond, keep, fill) : b.where(cond, fill, keep);
                }
            }
            b.setScope(old);
            Value id = identity(bias, scope + "/attn", scope + "/attn/attention_bias");
            b.setScope(scope + "/attn");
            Value masked = b.add(scores, id);
            b.setScope(old);
            softmax.setInput(0, masked);
            notes.add("h." + i + ": folded " + folded + " into the additive attention bias '" + id.name()
                    + "' (scores + bias; masked entries stay at the fill value, equal after softmax)");
            found(i, "attention_bias", "'" + id.name() + "' (from " + folded + ")");
            return id.name();
        }

        private DataType floatType(Value scores, Value fill) {
            DataType t = scores.type().dataType();
            if (t == null || !t.isFloatingPoint()) {
                Tensor f = ShapeInference.constantValue(fill);
                t = f != null ? f.dataType() : fill.type().dataType();
            }
            return t != null && t.isFloatingPoint() ? t : DataType.FLOAT;
        }

        // ---- model level ---------------------------------------------------------------------------------

        private Value inputIds() {
            for (Value v : g.inputs()) {
                if (v.name().equals(Gpt2Graph.INPUT_IDS)) {
                    recognised.put("input_ids", "graph input '" + v.name() + "'");
                    return v;
                }
            }
            for (Value v : g.inputs()) {
                for (Node u : v.uses()) {
                    if (u.opType().equals("Gather") && u.input(1) == v && isInitializer(u.input(0))
                            && g.initializer(u.input(0).name()).rank() == 2) {
                        recognised.put("input_ids", "graph input '" + v.name() + "' (indexes the embedding '"
                                + u.input(0).name() + "')");
                        return v;
                    }
                }
            }
            unrecognised.put("input_ids", "no graph input named 'input_ids' and none indexing a 2-D embedding");
            return null;
        }

        private Tensor wte(Value ids) {
            for (String n : List.of("transformer.wte.weight", "wte.weight")) {
                if (isInitializer(g.value(n))) {
                    recognised.put("transformer.wte", "initializer '" + n + "'");
                    return g.initializer(n);
                }
            }
            if (ids != null) {
                for (Node u : ids.uses()) {
                    if (u.opType().equals("Gather") && u.input(1) == ids && isInitializer(u.input(0))) {
                        Tensor t = g.initializer(u.input(0).name());
                        if (t.rank() == 2) {
                            recognised.put("transformer.wte", "initializer '" + u.input(0).name() + "' gathered by "
                                    + u.describe());
                            return t;
                        }
                    }
                }
            }
            unrecognised.put("transformer.wte", "no initializer 'transformer.wte.weight' and no 2-D initializer "
                    + "gathered by the token ids");
            return null;
        }

        private Tensor wpe() {
            for (String n : List.of("transformer.wpe.weight", "wpe.weight")) {
                if (isInitializer(g.value(n))) {
                    recognised.put("transformer.wpe", "initializer '" + n + "'");
                    return g.initializer(n);
                }
            }
            for (Node n : g.nodes()) {
                if (n.opType().equals("Gather") && (n.name().startsWith("/transformer/wpe/")
                        || n.name().startsWith("/wpe/")) && isInitializer(n.input(0))) {
                    recognised.put("transformer.wpe", "initializer '" + n.input(0).name() + "' gathered by "
                            + n.describe());
                    return g.initializer(n.input(0).name());
                }
            }
            unrecognised.put("transformer.wpe", "no initializer 'transformer.wpe.weight' and no Gather under "
                    + "'/transformer/wpe/' (n_positions unknown, reported as -1)");
            return null;
        }

        /**
         * The position ids as the position embedding reads them: an Identity inserted before the indices of the one
         * Gather of the position table, so shifting it (prefix tuning) touches nothing else.
         */
        private Value positionIds() {
            List<Node> gathers = new ArrayList<>();
            for (Node n : g.nodes()) {
                if (n.opType().equals("Gather") && n.inputCount() > 1 && isInitializer(n.input(0))
                        && List.of("transformer.wpe.weight", "wpe.weight").contains(n.input(0).name())
                        || n.opType().equals("Gather") && (n.name().startsWith("/transformer/wpe/")
                        || n.name().startsWith("/wpe/")) && isInitializer(n.input(0))) {
                    gathers.add(n);
                }
            }
            if (gathers.size() != 1) {
                unrecognised.put("position_ids", gathers.isEmpty() ? "no Gather of the position table"
                        : gathers.size() + " Gathers of the position table (expected one)");
                return null;
            }
            Node gather = gathers.get(0);
            String old = b.setScope("/transformer");
            Value id = b.identity(gather.input(1));
            b.setScope(old);
            id.rename(g.uniqueName(Gpt2Graph.POSITIONS_VALUE));
            gather.setInput(1, id);
            recognised.put("position_ids", "indices of " + gather.describe());
            return id;
        }

        private Value logits(Tensor wte) {
            for (Value v : g.outputs()) {
                if (v.name().equals(Gpt2Graph.LOGITS)) {
                    recognised.put("logits", "graph output '" + v.name() + "'");
                    return v;
                }
            }
            for (Value v : g.outputs()) {
                TensorType t = v.type();
                if (t.hasRank() && t.rank() == 3 && wte != null && t.dims().get(2).isFixed()
                        && t.dims().get(2).value() == wte.dim(0)) {
                    recognised.put("logits", "graph output '" + v.name() + "' (rank 3, last axis the vocabulary)");
                    return v;
                }
            }
            unrecognised.put("logits", "no graph output named 'logits' and none of shape [batch, sequence, vocab]");
            return null;
        }

        private void lmHead() {
            Lin l = linears.get("lm_head");
            if (l != null) {
                recognised.put("lm_head", l.describe() + " (not listed among the anatomy's linears, as for the "
                        + "provider's own graph)");
            } else {
                unrecognised.put("lm_head", "no MatMul/Gemm with a constant weight under node scope '/lm_head/' or "
                        + "weight 'lm_head.weight'");
            }
        }

        private long numHeads(long hidden) {
            if (headsFromShapes != null) {
                recognised.put("num_heads", headsFromShapes + " (from the key reshape / key type)");
                return headsFromShapes;
            }
            if (headDimFromScale != null && hidden > 0 && hidden % headDimFromScale == 0) {
                long h = hidden / headDimFromScale;
                recognised.put("num_heads", h + " (hidden " + hidden + " / head width " + headDimFromScale
                        + " from the score scale)");
                return h;
            }
            String json = model.metadata().get(Gpt2Graph.CONFIG_METADATA);
            if (json != null) {
                try {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> map = JSON.readValue(json, Map.class);
                    long h = Gpt2Config.fromMap(map, "metadata " + Gpt2Graph.CONFIG_METADATA).nHead();
                    recognised.put("num_heads", h + " (from metadata '" + Gpt2Graph.CONFIG_METADATA + "')");
                    return h;
                } catch (IOException | RuntimeException e) {
                    notes.add("metadata '" + Gpt2Graph.CONFIG_METADATA + "' is not a readable config: "
                            + e.getMessage());
                }
            }
            unrecognised.put("num_heads", "not found in the key reshape, the score scale or the metadata "
                    + "(reported as -1)");
            return -1;
        }
    }
}
