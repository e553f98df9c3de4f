package dev.pet.runtime.gpu;

import dev.pet.onnx.tensor.DataType;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * ONNX Runtime's operator-kernel table (the Markdown that {@code tools/python/gen_opkernel_doc.py} generates from the
 * registered kernels, {@code docs/OperatorKernels.md}): per domain and op, the opset ranges with a kernel, the
 * inputs' type constraints and the element types each constraint admits.
 */
final class CudaKernelTable {
    /** One row: an opset range with the signatures (alternatives) and the admitted types per constraint. */
    record Kernel(long from, long to, List<List<String>> signatures, Map<String, Set<String>> types) {
    }

    private final Map<String, List<Kernel>> kernels;

    private CudaKernelTable(Map<String, List<Kernel>> kernels) {
        this.kernels = kernels;
    }

    static CudaKernelTable parse(String markdown) {
        Map<String, List<Kernel>> out = new HashMap<>();
        String domain = null;
        String op = null;
        List<List<String>> signatures = null;
        for (String line : markdown.split("\n")) {
            if (!line.startsWith("|") || line.startsWith("|--") || line.startsWith("| Op Name")) {
                continue;
            }
            String[] c = line.split("\\|", -1);
            if (c.length < 5) {
                continue;
            }
            if (c[1].startsWith("**Operator Domain:**")) {
                domain = c[1].replaceAll(".*\\*([^*]+)\\*$", "$1").trim();
                continue;
            }
            if (!c[1].isBlank()) {
                op = c[1].trim();
                signatures = signatures(c[2]);
            }
            if (c[3].isBlank() || op == null || domain == null) {
                continue;
            }
            long[] range = range(c[3].trim());
            out.computeIfAbsent(domain + ":" + op, k -> new ArrayList<>())
                    .add(new Kernel(range[0], range[1], signatures, types(c[4])));
        }
        return new CudaKernelTable(out);
    }

    private static List<List<String>> signatures(String cell) {
        List<List<String>> alts = new ArrayList<>();
        for (String alt : cell.split("<br><br>or<br><br>")) {
            List<String> inputs = new ArrayList<>();
            for (String part : alt.split("<br>")) {
                part = part.trim();
                if (part.startsWith("*in* ")) {
                    // "*in* name:**T**" or "*in* name:**tensor(int64)**"
                    inputs.add(part.substring(part.indexOf(":**") + 3, part.lastIndexOf("**")));
                }
            }
            alts.add(inputs);
        }
        return alts;
    }

    private static long[] range(String v) {
        if (v.endsWith("+")) {
            return new long[] {Long.parseLong(v.substring(0, v.length() - 1)), Long.MAX_VALUE};
        }
        if (v.startsWith("[")) {
            String[] p = v.substring(1, v.length() - 1).split(",");
            return new long[] {Long.parseLong(p[0].trim()), Long.parseLong(p[1].trim())};
        }
        long n = Long.parseLong(v);
        return new long[] {n, n};
    }

    private static Map<String, Set<String>> types(String cell) {
        Map<String, Set<String>> m = new LinkedHashMap<>();
        for (String part : cell.split("<br/>")) {
            int eq = part.indexOf(" = ");
            if (eq < 0) {
                continue;
            }
            String name = part.substring(0, eq).replace("*", "").trim();
            Set<String> ts = new TreeSet<>();
            for (String t : part.substring(eq + 3).split(",")) {
                ts.add(t.trim());
            }
            m.put(name, ts);
        }
        return m;
    }

    /** ORT's spelling of an element type in the table, e.g. {@code tensor(float)}. */
    static String tensorType(DataType t) {
        return "tensor(" + switch (t) {
            case FLOAT16 -> "float16";
            default -> t.name().toLowerCase(Locale.ROOT);
        } + ")";
    }

    /** Null when a kernel covers the node, otherwise why not. */
    String check(String domain, String op, long opset, List<DataType> inputTypes) {
        List<Kernel> rows = kernels.get(domain + ":" + op);
        if (rows == null) {
            return "no CUDA kernel for " + domain + ":" + op + " in the table";
        }
        List<Kernel> inRange = rows.stream().filter(k -> k.from() <= opset && opset <= k.to()).toList();
        if (inRange.isEmpty()) {
            return "no CUDA kernel for opset " + opset + " (kernels cover " + rows.stream()
                    .map(k -> k.from() + ".." + (k.to() == Long.MAX_VALUE ? "" : k.to())).toList() + ")";
        }
        String why = null;
        for (Kernel k : inRange) {
            for (List<String> sig : k.signatures()) {
                why = mismatch(k, sig, inputTypes);
                if (why == null) {
                    return null;
                }
            }
        }
        return why;
    }

    private static String mismatch(Kernel k, List<String> sig, List<DataType> inputTypes) {
        if (sig.isEmpty()) {
            return inputTypes.isEmpty() ? null : "the kernel takes no inputs";
        }
        for (int i = 0; i < inputTypes.size(); i++) {
            DataType t = inputTypes.get(i);
            if (t == null) {
                continue; // an omitted optional input
            }
            // Variadic inputs (Concat, Sum) share the last parameter's constraint.
            String constraint = sig.get(Math.min(i, sig.size() - 1));
            String type = tensorType(t);
            if (constraint.startsWith("tensor(")) {
                if (!constraint.equals(type)) {
                    return "input " + i + " is " + type + ", the kernel takes " + constraint;
                }
                continue;
            }
            Set<String> admitted = k.types().get(constraint);
            if (admitted == null || !admitted.contains(type)) {
                return "input " + i + " is " + type + ", the kernel's " + constraint + " admits " + admitted;
            }
        }
        return null;
    }
}
